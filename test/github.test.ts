import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createGitHubReporter, githubEventReporter, redisDeploymentLinks, type GitHubReporter, type GitHubReporterOptions } from '../src/github/index.js';
import { githubHostOf, reportTarget } from '../src/github/source-repo.js';
import { BuildRecord, DeploymentRecord } from '../src/store/index.js';
import { startRedis, type TestRedis } from '../dev/redis.js';

/**
 * The real @octokit/rest client against a local HTTP server standing in for GitHub's REST API
 * (the one thing the house rules let us fake): it records every call and answers like GitHub.
 * Reporters are told that API serves github.com's repositories (`githubHost`), so builds fetched from
 * `https://github.com/<owner>/<name>.git` report to it.
 */
interface Call {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

type Behaviour = 'ok' | 'error500' | 'unauthorized' | 'hang';

class FakeGitHub {
  calls: Call[] = [];
  behaviour: Behaviour = 'ok';
  private server: Server;
  private nextDeployment = 41;
  private hanging: ServerResponse[] = [];
  url = '';

  constructor() {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (!address || typeof address === 'string') throw new Error('no address');
    this.url = `http://127.0.0.1:${address.port}`;
  }

  async stop(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    this.calls.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: text ? JSON.parse(text) : {} });
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
    };
    if (this.behaviour === 'hang') {
      this.hanging.push(res);
      return;
    }
    if (this.behaviour === 'unauthorized') return reply(401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
    if (this.behaviour === 'error500') return reply(500, { message: 'Server Error' });
    const path = req.url ?? '';
    if (/\/repos\/[^/]+\/[^/]+\/statuses\/[0-9a-f]{40}$/.test(path)) return reply(201, { id: 1, state: JSON.parse(text).state });
    if (/\/repos\/[^/]+\/[^/]+\/deployments$/.test(path)) return reply(201, { id: this.nextDeployment++, ref: JSON.parse(text).ref });
    if (/\/repos\/[^/]+\/[^/]+\/deployments\/\d+\/statuses$/.test(path)) return reply(201, { id: 7, state: JSON.parse(text).state });
    reply(404, { message: 'Not Found' });
  }
}

/** A real pino logger whose lines the test reads. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

const SHA = 'a'.repeat(40);
const DIGEST = `sha256:${'b'.repeat(64)}`;
const TOKEN = 'ghp_testtoken1234567890';
const PUBLIC = 'https://slipway.example.com/';

/** A reporter on the fake API, speaking for github.com's repositories. */
function githubReporter(url: string, o: Omit<GitHubReporterOptions, 'token' | 'baseUrl' | 'publicUrl'>): GitHubReporter {
  return createGitHubReporter({ token: TOKEN, baseUrl: url, githubHost: 'github.com', publicUrl: PUBLIC, ...o });
}

function build(over: Partial<BuildRecord> = {}): BuildRecord {
  return BuildRecord.parse({
    id: 'b-100', repo: 'acme/web', ref: 'refs/heads/main', sha: SHA, rules: ['edge', 'nightly'], tags: ['edge', 'main-aaaaaaa'],
    image: '127.0.0.1:5000/acme/web', status: 'queued', digest: null, error: null, queuedAt: '2026-11-22T01:00:00.000Z',
    startedAt: null, finishedAt: null, deployments: [], context: '.', dockerfile: 'Dockerfile', build_args: {}, cache: false,
    deploy: ['staging'], cloneUrl: 'https://github.com/acme/web.git', deliveryId: null, trigger: 'webhook', by: 'github:octocat', supersededBy: null, warnings: [],
    ...over,
  });
}

function deployment(over: Partial<DeploymentRecord> = {}): DeploymentRecord {
  return DeploymentRecord.parse({
    id: 'd-7', repo: 'acme/web', environment: 'staging', revision: 3, digest: DIGEST, image: '127.0.0.1:5000/acme/web',
    build: 'b-100', trigger: 'build', by: 'slipway', status: 'pending', startedAt: null, finishedAt: null, error: null,
    ...over,
  });
}

describe('GitHubReporter against a recording GitHub API', () => {
  const github = new FakeGitHub();
  let logger: ReturnType<typeof capturingLogger>;
  let reporter: GitHubReporter;

  beforeAll(() => github.start());
  afterAll(() => github.stop());
  beforeEach(() => {
    github.calls = [];
    github.behaviour = 'ok';
    logger = capturingLogger();
    reporter = githubReporter(github.url, { log: logger.log, timeoutMs: 2000 });
  });

  it('posts a commit status on the build sha with the token, the build link and a context naming its rules', async () => {
    await reporter.reportBuild(build());
    expect(github.calls).toHaveLength(1);
    const [call] = github.calls;
    expect(call?.method).toBe('POST');
    expect(call?.path).toBe(`/repos/acme/web/statuses/${SHA}`);
    expect(call?.headers.authorization).toBe(`token ${TOKEN}`);
    expect(call?.headers['user-agent']).toMatch(/^slipway /);
    expect(call?.headers['content-type']).toMatch(/^application\/json/);
    expect(call?.body).toEqual({
      state: 'pending',
      context: 'slipway/edge+nightly',
      description: 'Queued',
      target_url: 'https://slipway.example.com/#/builds/b-100',
    });
  });

  it.each([
    [{ status: 'queued' }, 'pending', 'Queued'],
    [{ status: 'running', startedAt: '2026-11-22T01:00:01.000Z' }, 'pending', 'Building'],
    [{ status: 'succeeded', digest: DIGEST }, 'success', 'Pushed edge, main-aaaaaaa'],
    [{ status: 'failed', error: 'step 3/5 RUN make: exit code 2' }, 'failure', 'Failed: step 3/5 RUN make: exit code 2'],
    [{ status: 'cancelled' }, 'error', 'Cancelled'],
    [{ status: 'superseded', supersededBy: 'b-101' }, 'error', 'Superseded by build b-101'],
  ] as const)('build %o is reported as %s', async (over, state, description) => {
    await reporter.reportBuild(build(over));
    expect(github.calls.map((c) => [c.body.state, c.body.description])).toEqual([[state, description]]);
  });

  it('names a build without rules by its image, and keeps descriptions to GitHub’s 140 characters on one line', async () => {
    await reporter.reportBuild(build({ rules: [], status: 'failed', error: `line one\n${'x'.repeat(300)}` }));
    const body = github.calls[0]?.body;
    expect(body?.context).toBe('slipway/127.0.0.1:5000/acme/web');
    expect(String(body?.description)).toHaveLength(140);
    expect(String(body?.description)).toMatch(/^Failed: line one x+…$/);
  });

  it('creates one GitHub deployment per rollout at the build commit, then one status per state change', async () => {
    const b = build({ status: 'succeeded', digest: DIGEST });
    await reporter.reportDeployment(deployment({ status: 'pending' }), b);
    await reporter.reportDeployment(deployment({ status: 'running', startedAt: '2026-11-22T01:01:00.000Z' }), b);
    await reporter.reportDeployment(deployment({ status: 'succeeded', finishedAt: '2026-11-22T01:02:00.000Z' }), b);

    expect(github.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      'POST /repos/acme/web/deployments',
      'POST /repos/acme/web/deployments/41/statuses',
      'POST /repos/acme/web/deployments/41/statuses',
      'POST /repos/acme/web/deployments/41/statuses',
    ]);
    expect(github.calls[0]?.body).toEqual({
      ref: SHA,
      environment: 'staging',
      description: `build by slipway: 127.0.0.1:5000/acme/web@${DIGEST}`,
      auto_merge: false,
      required_contexts: [],
      payload: { slipway: { deployment: 'd-7', revision: 3, image: '127.0.0.1:5000/acme/web', digest: DIGEST, build: 'b-100' } },
    });
    expect(github.calls.slice(1).map((c) => c.body)).toEqual([
      { state: 'queued', description: 'Revision 3 queued', log_url: 'https://slipway.example.com/#/repos/acme/web/environments/staging' },
      { state: 'in_progress', description: 'Rolling out revision 3', log_url: 'https://slipway.example.com/#/repos/acme/web/environments/staging' },
      { state: 'success', description: 'Revision 3 is live', log_url: 'https://slipway.example.com/#/repos/acme/web/environments/staging' },
    ]);
    for (const call of github.calls) expect(call.headers.authorization).toBe(`token ${TOKEN}`);
  });

  it('reports a rolled-back or failed rollout as failure with its reason', async () => {
    const b = build({ status: 'succeeded', digest: DIGEST });
    await reporter.reportDeployment(deployment({ id: 'd-8', status: 'rolled_back', error: 'task unhealthy after 2 retries' }), b);
    await reporter.reportDeployment(deployment({ id: 'd-9', status: 'failed', error: null }), b);
    const statuses = github.calls.filter((c) => c.path.endsWith('/statuses')).map((c) => [c.body.state, c.body.description]);
    expect(statuses).toEqual([
      ['failure', 'Rolled back: task unhealthy after 2 retries'],
      ['failure', 'Failed: rollout failed'],
    ]);
    // Two rollouts, two GitHub deployments.
    expect(github.calls.filter((c) => c.path.endsWith('/deployments')).length).toBe(2);
  });

  it('two state changes reported at once still make one GitHub deployment', async () => {
    const b = build({ status: 'succeeded', digest: DIGEST });
    await Promise.all([
      reporter.reportDeployment(deployment({ id: 'd-10', status: 'pending' }), b),
      reporter.reportDeployment(deployment({ id: 'd-10', status: 'running' }), b),
    ]);
    expect(github.calls.filter((c) => c.path.endsWith('/deployments')).length).toBe(1);
    expect(github.calls.filter((c) => c.path.endsWith('/statuses')).length).toBe(2);
  });

  it('reports nothing for a rollout whose commit is unknown, and says so at debug level', async () => {
    await reporter.reportDeployment(deployment({ build: null }), null);
    expect(github.calls).toEqual([]);
    expect(logger.lines.some((l) => l.msg === 'GitHub deployment not reported: the commit of this digest is not known' && l.deployment === 'd-7')).toBe(true);
  });

  it.each([
    ['error500', 500],
    ['unauthorized', 401],
  ] as const)('a GitHub answer of %s is logged with its status and never thrown, and the token is not logged', async (behaviour, status) => {
    github.behaviour = behaviour;
    await expect(reporter.reportBuild(build())).resolves.toBeUndefined();
    await expect(reporter.reportDeployment(deployment(), build())).resolves.toBeUndefined();
    const warnings = logger.lines.filter((l) => l.level === 40);
    expect(warnings.map((w) => [w.msg, w.status, w.repo])).toEqual([
      ['GitHub commit status not reported', status, 'acme/web'],
      ['GitHub deployment status not reported', status, 'acme/web'],
    ]);
    expect(JSON.stringify(logger.lines)).not.toContain(TOKEN);
  });

  it('a GitHub that never answers is given up on after the timeout and logged', async () => {
    github.behaviour = 'hang';
    const quick = githubReporter(github.url, { log: logger.log, timeoutMs: 300 });
    await expect(quick.reportBuild(build())).resolves.toBeUndefined();
    expect(github.calls).toHaveLength(1);
    expect(logger.lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual(['GitHub commit status not reported']);
  });

  it('an unreachable GitHub is logged and never thrown', async () => {
    const closed = new FakeGitHub();
    await closed.start();
    const url = closed.url;
    await closed.stop();
    const offline = githubReporter(url, { log: logger.log, timeoutMs: 2000 });
    await expect(offline.reportBuild(build())).resolves.toBeUndefined();
    expect(logger.lines.filter((l) => l.level === 40).map((l) => [l.msg, l.build])).toEqual([['GitHub commit status not reported', 'b-100']]);
  });

  it('uses a GitHub Enterprise base URL with its path prefix, for repositories of the API’s own host', async () => {
    const enterprise = createGitHubReporter({ token: TOKEN, baseUrl: `${github.url}/api/v3`, publicUrl: 'http://ci.internal:3000', log: logger.log });
    const ghesHost = new URL(github.url).host;
    await enterprise.reportBuild(build({ repo: 'platform/api', id: 'b 1/2', cloneUrl: `https://${ghesHost}/platform/api.git` }));
    // A github.com repository is not the Enterprise server's to hear about.
    await enterprise.reportBuild(build({ repo: 'platform/api', id: 'b-3', cloneUrl: 'https://github.com/platform/api.git' }));
    expect(github.calls.map((c) => c.path)).toEqual([`/api/v3/repos/platform/api/statuses/${SHA}`]);
    expect(github.calls[0]?.body.target_url).toBe('http://ci.internal:3000/#/builds/b%201%2F2');
    expect(logger.lines.map((l) => l.msg)).toContain(`GitHub commit status skipped: source https://github.com/platform/api.git is not on ${ghesHost}`);
  });
});

describe('statuses and deployments go to the repository the source was fetched from', () => {
  const github = new FakeGitHub();
  let logger: ReturnType<typeof capturingLogger>;
  let reporter: GitHubReporter;

  beforeAll(() => github.start());
  afterAll(() => github.stop());
  beforeEach(() => {
    github.calls = [];
    logger = capturingLogger();
    reporter = githubReporter(github.url, { log: logger.log, timeoutMs: 2000 });
  });

  it.each(['https://github.com/acme/app.git', 'https://github.com/acme/app', 'https://GitHub.COM/acme/app.git'])(
    'a build fetched from %s reports to acme/app',
    async (cloneUrl) => {
      await reporter.reportBuild(build({ repo: 'acme/app', cloneUrl }));
      expect(github.calls.map((c) => `${c.method} ${c.path}`)).toEqual([`POST /repos/acme/app/statuses/${SHA}`]);
    },
  );

  it('a build of acme/app whose source is https://github.com/other/lib.git reports to other/lib, never to acme/app', async () => {
    const b = build({ repo: 'acme/app', cloneUrl: 'https://github.com/other/lib.git', status: 'succeeded', digest: DIGEST });
    await reporter.reportBuild(b);
    await reporter.reportDeployment(deployment({ id: 'd-40', repo: 'acme/app', status: 'running' }), b);
    expect(github.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      `POST /repos/other/lib/statuses/${SHA}`,
      'POST /repos/other/lib/deployments',
      'POST /repos/other/lib/deployments/41/statuses',
    ]);
    // The links still name slipway's repository: that is where its builds and environments live.
    expect(github.calls[0]?.body.target_url).toBe('https://slipway.example.com/#/builds/b-100');
    expect(github.calls[2]?.body.log_url).toBe('https://slipway.example.com/#/repos/acme/app/environments/staging');
  });

  it('a build fetched from a loopback git server posts nothing, and says why once at info', async () => {
    const source = `${github.url}/x.git`;
    const b = build({ repo: 'acme/app', cloneUrl: source });
    for (const status of ['queued', 'running', 'succeeded'] as const) await reporter.reportBuild({ ...b, status });
    await reporter.reportDeployment(deployment({ id: 'd-41', repo: 'acme/app', status: 'pending' }), b);
    await reporter.reportDeployment(deployment({ id: 'd-41', repo: 'acme/app', status: 'running' }), b);

    expect(github.calls).toEqual([]);
    const infos = logger.lines.filter((l) => l.level === 30);
    expect(infos.map((l) => [l.msg, l.repo, l.build])).toEqual([
      [`GitHub commit status skipped: source ${source} is not on github.com`, 'acme/app', 'b-100'],
      [`GitHub deployment skipped: source ${source} is not on github.com`, 'acme/app', 'b-100'],
    ]);
    expect(logger.lines.filter((l) => (l.level as number) >= 40)).toEqual([]);
  });

  it.each([
    ['a file', 'file:///srv/git/app', 'source file:///srv/git/app is not on github.com'],
    ['another host (credentials kept out of the log)', 'https://bot:s3cret@gitlab.com/acme/app.git', 'source https://***@gitlab.com/acme/app.git is not on github.com'],
    ['plain http to github.com', 'http://github.com/acme/app.git', 'source http://github.com/acme/app.git is not on github.com'],
    ['a github.com page that is not a repository', 'https://github.com/acme/app/tree/main', 'source https://github.com/acme/app/tree/main is not on github.com'],
    ['no clone URL at all', null, 'the build has no source URL'],
  ])('a build whose source is %s posts nothing', async (_what, cloneUrl, why) => {
    await reporter.reportBuild(build({ repo: 'acme/app', cloneUrl }));
    expect(github.calls).toEqual([]);
    expect(logger.lines.map((l) => l.msg)).toEqual([`GitHub commit status skipped: ${why}`]);
    expect(JSON.stringify(logger.lines)).not.toContain('s3cret');
  });

  it('knows the web host of an API: github.com for api.github.com, else the API’s own host', () => {
    expect(githubHostOf('https://api.github.com')).toBe('github.com');
    expect(githubHostOf('https://API.GitHub.com/')).toBe('github.com');
    expect(githubHostOf('https://ghe.acme.com/api/v3')).toBe('ghe.acme.com');
    expect(reportTarget('https://ghe.acme.com/platform/api.git', githubHostOf('https://ghe.acme.com/api/v3'))).toEqual({ to: { owner: 'platform', repo: 'api' } });
    expect(reportTarget('https://github.com/acme/app.git?ref=x', 'github.com')).toHaveProperty('skip');
  });
});

describe('githubEventReporter: state-change events to GitHub', () => {
  const github = new FakeGitHub();
  beforeAll(() => github.start());
  afterAll(() => github.stop());
  beforeEach(() => {
    github.calls = [];
  });

  it('reports a build event as a commit status and a deployment event at its build’s commit', async () => {
    const { log } = capturingLogger();
    const reporter = githubReporter(github.url, { log });
    const other = build({ id: 'b-200', sha: 'c'.repeat(40), status: 'succeeded', digest: DIGEST });
    const lookedUp: string[] = [];
    const onEvent = githubEventReporter(reporter, {
      findBuild: async (id) => {
        lookedUp.push(id);
        return id === 'b-200' ? other : null;
      },
    });
    expect(onEvent({ type: 'build', record: build({ status: 'running' }) })).toBeUndefined();
    await vi.waitFor(() => expect(github.calls).toHaveLength(1));
    onEvent({ type: 'deployment', record: deployment({ id: 'd-30', build: 'b-200', status: 'running' }) });
    await vi.waitFor(() => expect(github.calls).toHaveLength(3));

    expect(lookedUp).toEqual(['b-200']);
    expect(github.calls.map((c) => c.path)).toEqual([
      `/repos/acme/web/statuses/${SHA}`,
      '/repos/acme/web/deployments',
      '/repos/acme/web/deployments/41/statuses',
    ]);
    expect(github.calls[1]?.body.ref).toBe('c'.repeat(40));
    expect(github.calls[2]?.body.state).toBe('in_progress');
  });

  it('a failing build lookup goes to onError and reports nothing', async () => {
    const { log } = capturingLogger();
    const reporter = githubReporter(github.url, { log });
    const errors: unknown[] = [];
    const onEvent = githubEventReporter(reporter, {
      findBuild: async () => {
        throw new Error('redis is down');
      },
      onError: (err) => errors.push(err),
    });
    onEvent({ type: 'deployment', record: deployment({ id: 'd-31' }) });
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    expect((errors[0] as Error).message).toBe('redis is down');
    expect(github.calls).toEqual([]);
  });
});

describe('GitHub deployment ids shared through Redis', () => {
  const github = new FakeGitHub();
  let redis: TestRedis;
  let client: Redis;

  beforeAll(async () => {
    await github.start();
    redis = await startRedis();
    client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    client.disconnect();
    await redis.stop();
    await github.stop();
  });
  afterEach(() => {
    github.calls = [];
  });

  it('a rollout reported by two processes lands on one GitHub deployment', async () => {
    const { log } = capturingLogger();
    const serve = githubReporter(github.url, { log, links: redisDeploymentLinks(client) });
    const worker = githubReporter(github.url, { log, links: redisDeploymentLinks(client) });
    const b = build({ status: 'succeeded', digest: DIGEST });
    await serve.reportDeployment(deployment({ id: 'd-20', status: 'pending', trigger: 'promote', by: 'alice', environment: 'production' }), b);
    await worker.reportDeployment(deployment({ id: 'd-20', status: 'running', trigger: 'promote', by: 'alice', environment: 'production' }), b);

    const created = github.calls.filter((c) => c.path === '/repos/acme/web/deployments');
    expect(created).toHaveLength(1);
    expect(created[0]?.body.environment).toBe('production');
    expect(created[0]?.body.description).toBe(`promote by alice: 127.0.0.1:5000/acme/web@${DIGEST}`);
    const statusPaths = github.calls.filter((c) => c.path.endsWith('/statuses')).map((c) => c.path);
    expect(statusPaths).toEqual(['/repos/acme/web/deployments/41/statuses', '/repos/acme/web/deployments/41/statuses']);
    expect(await client.get('slipway:github:deployment:d-20')).toBe('41');
    expect(await client.ttl('slipway:github:deployment:d-20')).toBeGreaterThan(0);
  });
});
