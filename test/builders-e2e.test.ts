import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildRecord } from '../src/store/index.js';
import { startSlipway, type Slipway } from './support/slipway.js';
import { ADMIN, SECRET, api, deliver, eventually, pushPayload } from '../dev/webhooks.js';
import { BASE, REGISTRY, deleteRegistryRepo, gitHttpServer, makeRepo, registryDigest, registryTags } from '../dev/builders.js';
import { leftovers, registryLabels } from './support/builders.js';

/** End to end: a real signed push → lanes → a dedicated builder → tags and digest in the real registry; logs; cancel. */

const run = Date.now().toString(36);
const REPO = `acme/e2e-${run}`;
const IMAGE = `${REGISTRY}/slipway-test/e2e-${run}`;
let slipway: Slipway;
let serve: Slipway['serve'];
let git: { url: string; close(): Promise<void> };
let repoDir: string;
let cloneUrl: string;

const CONFIG = `
repository: ${REPO}
image: ${IMAGE}
builder: { isolation: dedicated, timeout: 5m }
rules:
  - name: edge
    source: branch
    match: main
    tags: [edge, "{sourceref}-{sha:7}"]
    build_args: { GIT_SHA: "{sha}" }
  - name: releases
    source: tag
    semver: ">=1.0.0"
    tags: ["{version}", "{major}.{minor}", latest]
    build_args: { GIT_SHA: "{sha}" }
`;

beforeAll(async () => {
  slipway = await startSlipway({ name: 'e2e', secret: SECRET, adminToken: ADMIN, env: { SLIPWAY_ALLOW_SHARED_BUILDS: 'true' } });
  serve = slipway.serve;
  const repo = await makeRepo({
    Dockerfile: [`FROM ${BASE}`, 'ARG GIT_SHA', 'COPY . /app', 'RUN echo "built $GIT_SHA" && test -f /app/index.html', ''].join('\n'),
    'index.html': '<h1>hello</h1>\n',
  });
  repoDir = repo.dir;
  git = await gitHttpServer(path.dirname(repoDir));
  cloneUrl = `${git.url}/${path.basename(repoDir)}`;
  expect((await api(serve.url, 'PUT', `/api/repos/${REPO}`, { text: CONFIG })).status).toBe(200);
});

afterAll(async () => {
  await slipway?.stop();
  await git?.close();
  await deleteRegistryRepo(IMAGE);
  await rm(repoDir, { recursive: true, force: true });
});

async function push(ref: string, sha: string): Promise<string> {
  const payload = pushPayload({ repo: REPO, ref, sha });
  (payload.repository as Record<string, unknown>).clone_url = cloneUrl;
  const res = await deliver(serve.url, { event: 'push', payload });
  expect(res.status).toBe(202);
  expect(res.body.builds).toHaveLength(1);
  return res.body.builds[0] as string;
}

async function ended(id: string): Promise<BuildRecord> {
  return eventually(async () => {
    const r = (await api(serve.url, 'GET', `/api/builds/${id}`)).body as BuildRecord;
    return ['succeeded', 'failed', 'cancelled', 'superseded'].includes(r.status) ? r : null;
  });
}

describe('builds through a real signed webhook', () => {
  let sha: string;
  let digest: string;
  let firstId: string;

  it('a push to main builds, tags and pushes exactly as the rules say, with the registry digest on the record', async () => {
    sha = (await import('../dev/builders.js')).git(repoDir, 'rev-parse', 'HEAD');
    firstId = await push('refs/heads/main', sha);
    const record = await ended(firstId);
    expect(record).toMatchObject({ status: 'succeeded', error: null, sha, image: IMAGE });
    expect(await registryTags(IMAGE)).toEqual(['edge', `main-${sha.slice(0, 7)}`].sort());
    digest = record.digest!;
    expect(await registryDigest(IMAGE, 'edge')).toBe(digest);
    expect(await registryDigest(IMAGE, `main-${sha.slice(0, 7)}`)).toBe(digest);
    const labels = await registryLabels(IMAGE, digest);
    expect(labels).toMatchObject({
      'org.opencontainers.image.revision': sha,
      'org.opencontainers.image.source': cloneUrl,
      'io.slipway.build': firstId,
    });
    expect(labels['org.opencontainers.image.created']).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(await leftovers(slipway.dataDir)).toEqual([]);
  });

  it('GET /api/builds/{id}/log answers the whole log as text with step markers and the end', async () => {
    const res = await fetch(`${serve.url}/api/builds/${firstId}/log`, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^==> \[0\.0s\] fetch source$/m);
    expect(text).toMatch(/^==> \[\d+\.\ds\] start dedicated engine$/m);
    expect(text).toMatch(new RegExp(`#\\d+ built ${sha}`));
    expect(text).toMatch(/^==> \[\d+\.\ds\] build succeeded$/m);
    expect((await fetch(`${serve.url}/api/builds/nope/log`, { headers: { authorization: `Bearer ${ADMIN}` } })).status).toBe(404);
    expect((await fetch(`${serve.url}/api/builds/${firstId}/log`)).status).toBe(401);
  });

  it('slipway logs ID prints the log; -f on an ended build prints it and its final status', async () => {
    const env = { ...process.env, SLIPWAY_URL: serve.url, SLIPWAY_TOKEN: ADMIN };
    const bin = path.join(import.meta.dirname, '..', 'bin', 'slipway.js');
    const plain = await promisify(execFile)(process.execPath, [bin, 'logs', firstId], { env });
    expect(plain.stdout).toMatch(/==> \[\d+\.\ds\] build succeeded/);
    const followed = await promisify(execFile)(process.execPath, [bin, 'logs', firstId, '-f'], { env });
    expect(followed.stdout).toMatch(/fetch source/);
    expect(followed.stderr).toContain(`build ${firstId} succeeded`);
    const missing = await promisify(execFile)(process.execPath, [bin, 'logs', 'nope'], { env }).catch((e: { code: number; stderr: string }) => e);
    expect(missing).toMatchObject({ code: 1 });
    expect((missing as { stderr: string }).stderr).toContain('no build nope');
  });

  it('a release tag on the built commit is not rebuilt: the same manifest gets the release tags', async () => {
    const id = await push('refs/tags/v1.2.3', sha);
    const record = await ended(id);
    expect(record).toMatchObject({ status: 'succeeded' });
    // The build args differ only by rule name, not value: same inputs, same image.
    expect(record.digest).toBe(digest);
    for (const tag of ['1.2.3', '1.2', 'latest']) expect(await registryDigest(IMAGE, tag)).toBe(digest);
    const log = await (await fetch(`${serve.url}/api/builds/${id}/log`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
    expect(log).toMatch(/reuse image of build/);
  });

  it('cancel mid-build through the API: cancelled within seconds, a live SSE follower sees the end, nothing left', async () => {
    const slow = await makeRepo({ Dockerfile: `FROM ${BASE}\nRUN echo started && sleep 120\n` }, repoDir);
    const id = await push('refs/heads/main', slow.sha);
    const sse = await fetch(`${serve.url}/api/builds/${id}/log`, { headers: { authorization: `Bearer ${ADMIN}`, accept: 'text/event-stream' } });
    expect(sse.headers.get('content-type')).toBe('text/event-stream');
    const decoder = new TextDecoder();
    let events = '';
    const reading = (async () => {
      for await (const chunk of sse.body as unknown as AsyncIterable<Uint8Array>) events += decoder.decode(chunk, { stream: true });
    })();
    await eventually(async () => / started\n/.test(events));
    const t0 = Date.now();
    const cancel = await api(serve.url, 'POST', `/api/builds/${id}/cancel`);
    expect(cancel.status).toBe(202);
    const record = await ended(id);
    expect(record.status).toBe('cancelled');
    expect(Date.now() - t0).toBeLessThan(30_000);
    await reading;
    expect(events).toMatch(/event: step\ndata: ==> \[\d+\.\ds\] fetch source/);
    expect(events).toMatch(/event: end\ndata: \{"status":"cancelled"/);
    expect(await leftovers(slipway.dataDir)).toEqual([]);
    expect(await registryTags(IMAGE)).not.toContain(`main-${slow.sha.slice(0, 7)}`);
    expect((await api(serve.url, 'POST', `/api/builds/${id}/cancel`)).status).toBe(409);
  });

  it('a failing Dockerfile step and builder.timeout end the record failed with a one-line reason, leaving nothing', async () => {
    const repoWith = async (name: string, timeout: string) => {
      const doc = `repository: ${name}\nimage: ${IMAGE}\nbuilder: { isolation: shared, timeout: ${timeout} }\nrules:\n  - { name: edge, source: branch, match: main, tags: ["fail-{sha:7}"] }\n`;
      expect((await api(serve.url, 'PUT', `/api/repos/${name}`, { text: doc })).status).toBe(200);
      return name;
    };
    const failing = await repoWith(`acme/e2e-fail-${run}`, '5m');
    const slowRepo = await repoWith(`acme/e2e-slow-${run}`, '3s');
    const at = async (other: string, files: Record<string, string>) => {
      const { sha: next } = await makeRepo(files, repoDir);
      const payload = pushPayload({ repo: other, ref: 'refs/heads/main', sha: next });
      (payload.repository as Record<string, unknown>).clone_url = cloneUrl;
      const res = await deliver(serve.url, { event: 'push', payload });
      return ended(res.body.builds[0] as string);
    };
    const broken = await at(failing, { Dockerfile: `FROM ${BASE}\nRUN echo ok\nRUN echo boom && exit 3\n` });
    expect(broken.status).toBe('failed');
    expect(broken.error).toBe('step [3/3] RUN echo boom && exit 3: exit code 3; last output: boom');
    expect(broken.digest).toBeNull();
    const slow = await at(slowRepo, { Dockerfile: `FROM ${BASE}\nRUN sleep 60\n` });
    expect(slow).toMatchObject({ status: 'failed', error: 'timed out after 3 s', digest: null });
    expect(await leftovers(slipway.dataDir)).toEqual([]);
  });
});
