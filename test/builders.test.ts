import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerBuildRunner } from '../src/builders/index.js';
import { startRedis, type TestRedis } from '../dev/redis.js';
import { BASE, REGISTRY, buildRecord, deleteRegistryRepo, gitHttpServer, makeRepo, registryDigest, registryTags } from '../dev/builders.js';
import { authRegistry, leftovers, memoryLog, registryLabels } from './support/builders.js';

/** The runner on the shared (host) engine: source, context, BuildKit, push, digest, reuse, failures. */

const docker = new Docker();
const run = Date.now().toString(36);
const IMAGE = `${REGISTRY}/slipway-test/builders-${run}`;
let redisServer: TestRedis;
let redis: Redis;
let dataDir: string;
let runner: DockerBuildRunner;

const APP = {
  Dockerfile: [`FROM ${BASE}`, 'ARG GREETING=hi', 'COPY app/ /app/', 'RUN echo "$GREETING" > /greeting && ls /app', 'CMD ["cat", "/greeting"]', ''].join('\n'),
  'app/main.sh': 'echo main\n',
  'app/secret.env': 'TOKEN=dont-ship-me\n',
  '.dockerignore': 'app/*.env\n',
};

beforeAll(async () => {
  redisServer = await startRedis();
  redis = new Redis(redisServer.url);
  dataDir = await mkdtemp(path.join(tmpdir(), 'slipway-builders-'));
  runner = new DockerBuildRunner({ redis, docker, dataDir, defaults: { isolation: 'shared' } });
});

afterAll(async () => {
  await deleteRegistryRepo(IMAGE);
  if (repoDir) await rm(repoDir, { recursive: true, force: true });
  redis.disconnect();
  await redisServer.stop();
  await rm(dataDir, { recursive: true, force: true });
});

let repoDir: string | undefined;

describe('shared engine builds', () => {
  let sha: string;
  let digest: string;

  it('builds a file:// repository at its sha, pushes every tag, and answers the registry digest', async () => {
    ({ dir: repoDir, sha } = await makeRepo(APP));
    const build = buildRecord({
      repo: 'acme/web',
      sha,
      image: IMAGE,
      tags: ['edge', `main-${sha.slice(0, 7)}`],
      cloneUrl: `file://${repoDir!}`,
      build_args: { GREETING: 'hello from slipway' },
    });
    const log = memoryLog();
    const out = await runner.run(build, { signal: new AbortController().signal, log });
    digest = out.digest;
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await registryTags(IMAGE)).toEqual(['edge', `main-${sha.slice(0, 7)}`].sort());
    expect(await registryDigest(IMAGE, 'edge')).toBe(digest);
    expect(await registryDigest(IMAGE, `main-${sha.slice(0, 7)}`)).toBe(digest);
    const labels = await registryLabels(IMAGE, digest);
    expect(labels['org.opencontainers.image.revision']).toBe(sha);
    expect(labels['org.opencontainers.image.source']).toBe(`file://${repoDir!}`);
    expect(Date.parse(labels['org.opencontainers.image.created']!)).not.toBeNaN();
    expect(labels['io.slipway.build']).toBe(build.id);
    // Step markers, BuildKit steps with their output and timing.
    const text = log.text();
    expect(text).toContain('==> fetch source');
    expect(text).toMatch(/==> #\d+ \[2\/3\] COPY app\/ \/app\//);
    expect(text).toMatch(/#\d+ main\.sh/);
    expect(text).toMatch(/#\d+ DONE \d+\.\d+s/);
    // .dockerignore kept secret.env out of the context.
    expect(text).not.toContain('secret.env');
    // Nothing left on the host engine or on disk.
    const local = await docker.listImages({ filters: { label: [`io.slipway.build=${build.id}`] } });
    expect(local).toEqual([]);
    expect(await leftovers(dataDir)).toEqual([]);
  });

  it('does not rebuild equal inputs: the earlier manifest gets the new tags', async () => {
    const build = buildRecord({
      repo: 'acme/web',
      sha,
      image: IMAGE,
      tags: ['1.0.0', 'latest'],
      cloneUrl: `file://${repoDir!}`,
      build_args: { GREETING: 'hello from slipway' },
    });
    const log = memoryLog();
    const out = await runner.run(build, { signal: new AbortController().signal, log });
    expect(out.digest).toBe(digest);
    expect(log.text()).toMatch(/==> reuse image of build/);
    expect(log.text()).not.toContain('==> fetch source');
    expect(await registryDigest(IMAGE, '1.0.0')).toBe(digest);
    expect(await registryDigest(IMAGE, 'latest')).toBe(digest);
  });

  it('rebuilds when a build arg differs, and fetches over http:// (git http-backend)', async () => {
    const server = await gitHttpServer(path.dirname(repoDir!));
    try {
      const build = buildRecord({
        repo: 'acme/web',
        sha,
        image: IMAGE,
        tags: ['other-arg'],
        cloneUrl: `${server.url}/${path.basename(repoDir!)}`,
        build_args: { GREETING: 'another greeting' },
      });
      const log = memoryLog();
      const out = await runner.run(build, { signal: new AbortController().signal, log });
      expect(out.digest).not.toBe(digest);
      expect(log.text()).toContain('==> fetch source');
      expect(await registryDigest(IMAGE, 'other-arg')).toBe(out.digest);
    } finally {
      await server.close();
    }
  });

  it('fails a broken Dockerfile step with the step and its error in one line, leaving nothing', async () => {
    const { dir, sha: bad } = await makeRepo({ Dockerfile: `FROM ${BASE}\nRUN echo before\nRUN exit 3\n` });
    const build = buildRecord({ repo: 'acme/bad', sha: bad, image: IMAGE, tags: ['broken'], cloneUrl: `file://${dir}` });
    const err = await runner.run(build, { signal: new AbortController().signal, log: memoryLog() }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'build_failed', retryable: false });
    expect((err as Error).message).toBe("step [3/3] RUN exit 3: exit code 3");
    expect((err as Error).message).not.toContain('\n');
    expect(await registryTags(IMAGE)).not.toContain('broken');
    expect(await leftovers(dataDir)).toEqual([]);
    await rm(dir, { recursive: true, force: true });
  });

  it('fails an unreachable source with a useful reason', async () => {
    const build = buildRecord({
      repo: 'acme/gone',
      sha: 'a'.repeat(40),
      image: IMAGE,
      tags: ['never'],
      cloneUrl: 'http://user:s3cret@127.0.0.1:9/acme/gone.git',
    });
    const err = await runner.run(build, { signal: new AbortController().signal, log: memoryLog() }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'source_unreachable', retryable: false });
    expect((err as Error).message).toMatch(/cannot fetch http:\/\/\*\*\*@127\.0\.0\.1:9\/acme\/gone\.git: .*(connect|refused)/i);
    expect((err as Error).message).not.toContain('s3cret');
    expect(await leftovers(dataDir)).toEqual([]);
  });

  it('fails a commit that the repository does not have', async () => {
    const build = buildRecord({ repo: 'acme/web', sha: 'b'.repeat(40), image: IMAGE, tags: ['nope'], cloneUrl: `file://${repoDir!}` });
    const err = await runner.run(build, { signal: new AbortController().signal, log: memoryLog() }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'source_unreachable' });
    expect((err as Error).message).toContain('b'.repeat(40));
  });

  it('fails a push that the registry refuses (bad credentials), never showing the password', async () => {
    const reg = await authRegistry('slipway', 'right-password');
    try {
      const bad = new DockerBuildRunner({
        redis,
        docker,
        dataDir,
        defaults: { isolation: 'shared' },
        registryCredentials: { [reg.host]: { username: 'slipway', password: 'wrong-password' } },
      });
      const build = buildRecord({ repo: 'acme/web', sha, image: `${reg.host}/acme/web`, tags: ['x'], cloneUrl: `file://${repoDir!}` });
      const log = memoryLog();
      const err = await bad.run(build, { signal: new AbortController().signal, log }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'registry_auth', retryable: false });
      expect((err as Error).message).toBe(`registry ${reg.host} refused the configured credentials for ${reg.host}/acme/web: 401 Unauthorized`);
      // Refused before building: no build step ran.
      expect(log.text()).not.toContain('==> build');
      expect(`${(err as Error).message}\n${log.text()}`).not.toContain('wrong-password');
      expect(await leftovers(dataDir)).toEqual([]);

      const good = new DockerBuildRunner({
        redis,
        docker,
        dataDir,
        defaults: { isolation: 'shared' },
        registryCredentials: { [reg.host]: { username: 'slipway', password: 'right-password' } },
      });
      const ok = await good.run(build, { signal: new AbortController().signal, log: memoryLog() });
      expect(ok.digest).toMatch(/^sha256:/);
    } finally {
      await reg.stop();
    }
  });

  it('stops at builder.timeout with a timeout error and cleans up', async () => {
    const { dir, sha: slow } = await makeRepo({ Dockerfile: `FROM ${BASE}\nRUN sleep 60\n` });
    const timed = new DockerBuildRunner({ redis, docker, dataDir, defaults: { isolation: 'shared', timeoutMs: 3000 } });
    const build = buildRecord({ repo: 'acme/slow', sha: slow, image: IMAGE, tags: ['slow'], cloneUrl: `file://${dir}` });
    const err = await timed.run(build, { signal: new AbortController().signal, log: memoryLog() }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'build_timeout' });
    expect((err as Error).message).toBe('timed out after 3 s');
    expect(await leftovers(dataDir)).toEqual([]);
    await rm(dir, { recursive: true, force: true });
  });

  it('cancels mid-build through the signal: rejects with the signal reason, nothing left', async () => {
    const { dir, sha: slow } = await makeRepo({ Dockerfile: `FROM ${BASE}\nRUN echo started && sleep 60\n` });
    const build = buildRecord({ repo: 'acme/slow', sha: slow, image: IMAGE, tags: ['cancelled'], cloneUrl: `file://${dir}` });
    const ac = new AbortController();
    const log = memoryLog();
    const origLine = log.line;
    const reason = new Error('cancelled by tester');
    log.line = (t: string) => {
      origLine(t);
      if (t.endsWith(' started')) ac.abort(reason);
    };
    const t0 = Date.now();
    const err = await runner.run(build, { signal: ac.signal, log }).catch((e: unknown) => e);
    expect(err).toBe(reason);
    // "within seconds": far below the 60 s the step would take.
    expect(Date.now() - t0).toBeLessThan(30_000);
    expect(await leftovers(dataDir)).toEqual([]);
    expect(await registryTags(IMAGE)).not.toContain('cancelled');
    await rm(dir, { recursive: true, force: true });
  });
});
