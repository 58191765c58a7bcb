import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildRunner } from '../src/queue/index.js';
import { startSlipway, type Slipway } from './support/slipway.js';
import { ADMIN, SECRET, api, deliver, eventually, pushPayload } from '../dev/webhooks.js';

/**
 * GitHub feedback as the real processes wire it: with SLIPWAY_GITHUB_API_URL and a status token set,
 * a build that a signed push started reports its states as commit statuses to "GitHub" (a local
 * server recording what the real octokit client sends). The runner records instead of building:
 * this suite is about the wiring, the builders' suites build for real.
 *
 * Statuses go only to the repository the source was fetched from, on the API's own host: the local
 * server stands for a GitHub Enterprise Server at 127.0.0.1:<port>, whose repositories' clone URLs are
 * `https://127.0.0.1:<port>/<owner>/<name>.git` (allowed as a source host, like github.com). Nothing is
 * fetched from there: the runner never clones.
 */

interface Call {
  method: string;
  path: string;
  auth: string | undefined;
  body: Record<string, unknown>;
}

const REPO = 'acme/feedback';
const DIGEST = `sha256:${'ab'.repeat(32)}`;
let github: Server;
let githubUrl: string;
let githubHost: string;
const calls: Call[] = [];
let slipway: Slipway;

const runner: BuildRunner = {
  async run(_build, { log }) {
    log.step('build');
    log.line('pretending to build');
    return { digest: DIGEST };
  },
};

beforeAll(async () => {
  github = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      calls.push({ method: req.method ?? '', path: req.url ?? '', auth: req.headers.authorization, body: text ? JSON.parse(text) : {} });
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id: calls.length }));
    });
  });
  await new Promise<void>((resolve) => github.listen(0, '127.0.0.1', resolve));
  const address = github.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  githubUrl = `http://127.0.0.1:${address.port}`;
  githubHost = `127.0.0.1:${address.port}`;

  slipway = await startSlipway({
    name: 'github-wiring',
    secret: SECRET,
    adminToken: ADMIN,
    runner,
    env: {
      SLIPWAY_GITHUB_API_URL: githubUrl,
      SLIPWAY_GITHUB_STATUS_TOKEN: 'status-token',
      SLIPWAY_PUBLIC_URL: 'https://slipway.example.test',
      SLIPWAY_SOURCE_ALLOW: `${githubHost},http://127.0.0.1:`,
    },
  });
});

afterAll(async () => {
  await slipway?.stop();
  await new Promise((resolve) => github?.close(resolve));
});

/** A signed push of main whose repository is cloned from `cloneUrl`; answers the commit and the build. */
async function push(cloneUrl: string): Promise<{ sha: string; buildId: string }> {
  const payload = pushPayload({ repo: REPO, ref: 'refs/heads/main' });
  (payload.repository as { clone_url: string }).clone_url = cloneUrl;
  const answer = await deliver(slipway.serve.url, { event: 'push', payload });
  expect(answer.status).toBe(202);
  const [buildId] = (answer.body as { builds: string[] }).builds;
  expect(buildId).toBeTruthy();
  return { sha: payload.after as string, buildId: buildId! };
}

describe('GitHub feedback from the running processes', () => {
  beforeAll(async () => {
    const put = await api(slipway.serve.url, 'PUT', `/api/repos/${REPO}`, {
      json: { repository: REPO, image: '127.0.0.1:5000/acme/feedback', rules: [{ name: 'edge', source: 'branch', match: 'main', tags: ['edge'] }] },
    });
    expect(put.status).toBe(200);
  });

  it('reports a pushed build as pending, then success, on the pushed commit, linking to its build page', async () => {
    const { sha, buildId } = await push(`https://${githubHost}/${REPO}.git`);

    const statusPath = `/repos/${REPO}/statuses/${sha}`;
    const states = await eventually(async () => {
      const seen = calls.filter((c) => c.method === 'POST' && c.path === statusPath).map((c) => c.body.state);
      return seen.includes('success') ? seen : null;
    });
    expect(states).toContain('pending');
    expect(states.indexOf('pending')).toBeLessThan(states.indexOf('success'));
    const success = calls.find((c) => c.path === statusPath && c.body.state === 'success')!;
    expect(success.auth).toBe('token status-token');
    expect(success.body.context).toBe('slipway/edge');
    expect(success.body.target_url).toBe(`https://slipway.example.test/#/builds/${buildId}`);
  });

  it('reports nothing for a build whose source is a loopback git server', async () => {
    const { sha, buildId } = await push(`http://127.0.0.1:9/${REPO}.git`);
    await eventually(async () => (await api(slipway.serve.url, 'GET', `/api/builds/${buildId}`)).body.status === 'succeeded');
    // Reporting follows each published change at once: a status would have been sent by now.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(calls.filter((c) => c.path.includes(sha))).toEqual([]);
  });
});
