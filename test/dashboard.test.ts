import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, tearDown } from './support/browser.js';
import { DemoClient } from '../demo/api-client.js';
import { removeDeployments } from '../demo/cleanup.js';
import { startGitServer, type GitServer } from '../demo/git-server.js';
import { waitFor } from '../demo/narrator.js';
import { SampleRepo, type Commit } from '../demo/sample-app.js';
import { deliver, pushPayload } from '../demo/webhook.js';
import { loadConfig } from '../src/config.js';
import { dockerClient } from '../src/main.js';
import { startUp, type UpHandle } from '../src/cli/up.js';
import type { BuildRecord, DeploymentRecord } from '../src/store/records.js';
import { parseSourceAllow } from '../src/auth/index.js';
import { freePort, startRedis, type TestRedis } from '../dev/redis.js';
import { LOCAL_SOURCES } from '../dev/sources.js';

/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core) against a real
 * slipway (`startUp`: API, dashboard, lanes, builders, deployer) on a real Redis, Docker,
 * Swarm and registry, with source in a real git server and real signed webhooks.
 */

const REPO = 'dashboard-test/web';
const BASE_IMAGE = '127.0.0.1:5000/slipway/busybox:latest';
const ADMIN_TOKEN = `dash-admin-${Date.now().toString(36)}`;
const ARTIFACTS = join(process.cwd(), 'test-artifacts');

let redis: TestRedis;
let up: UpHandle;
let git: GitServer;
let work: string;
let sample: SampleRepo;
let browser: Browser;
let api: DemoClient;
let ports: { staging: number; production: number };
let v1: BuildRecord;
/** Uncaught errors of the dashboard's scripts: every test ends with none. */
const pageErrors: string[] = [];

/**
 * A small app that builds in a second (busybox httpd serving its version): the browser tests are
 * about the dashboard, not the build. `slow` adds a step that takes a few seconds, so a browser
 * can watch a build run.
 */
function files(version: string, slow = false): Record<string, string> {
  return {
    Dockerfile: [
      `FROM ${BASE_IMAGE}`,
      ...(slow ? ['RUN echo "compiling hello" && sleep 6 && echo "compiled hello"'] : []),
      'COPY www /www',
      'HEALTHCHECK --interval=2s --timeout=2s --start-period=1s --retries=2 CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/healthz"]',
      'EXPOSE 8080',
      'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]',
      '',
    ].join('\n'),
    'www/index.html': `hello from slipway demo ${version}\n`,
    'www/healthz': 'ok\n',
  };
}

function config() {
  return [
    `repository: ${REPO}`,
    `image: 127.0.0.1:5000/${REPO}`,
    'environments:',
    '  staging:',
    '    service: dashboard-test-web-staging',
    '    replicas: 1',
    `    ports: ["${ports.staging}:8080"]`,
    '  production:',
    '    service: dashboard-test-web',
    '    replicas: 1',
    `    ports: ["${ports.production}:8080"]`,
    '    promote_from: staging',
    '    protected: true',
    'rules:',
    '  - name: edge',
    '    source: branch',
    '    match: main',
    '    tags: [edge, "{sourceref}-{sha:7}"]',
    '    deploy: staging',
    '',
  ].join('\n');
}

async function push(commit: Commit): Promise<string> {
  const res = await deliver(up.url, up.webhookSecret, 'push', pushPayload({ repo: REPO, cloneUrl: `${git.url}/${REPO}.git`, commit, pusher: 'dev' }));
  expect(res.status).toBe(202);
  const ids = (res.body as { builds: string[] }).builds;
  expect(ids).toHaveLength(1);
  return ids[0]!;
}

async function finished(id: string): Promise<BuildRecord> {
  return waitFor(`build ${id}`, async () => {
    const b = await api.get<BuildRecord>(`/api/builds/${id}`);
    return ['succeeded', 'failed', 'cancelled', 'superseded'].includes(b.status) ? b : undefined;
  }, 180_000);
}

/** Waits until `env` has a succeeded revision running `digest`. */
async function running(env: string, digest: string): Promise<DeploymentRecord> {
  return waitFor(`${env} to run ${digest}`, async () => {
    const view = await api.get<{ current: DeploymentRecord | null; history: DeploymentRecord[] }>(`/api/repos/${REPO}/environments/${env}`);
    const failed = view.history.find((d) => d.digest === digest && (d.status === 'failed' || d.status === 'rolled_back'));
    if (failed) throw new Error(`rollout of ${digest} to ${env} ${failed.status}: ${failed.error}`);
    return view.current?.digest === digest ? view.current : undefined;
  }, 180_000);
}

/**
 * Opens a URL. Chromium aborts requests in flight with ERR_NETWORK_CHANGED whenever Docker adds
 * or removes a network interface (builders and rollouts on this machine do, all the time), so a
 * navigation (`url`, or a reload without one) is retried; the dashboard itself retries its own loads and reads.
 */
async function open(page: Page, url?: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      if (url) await page.goto(url);
      else await page.reload();
      return;
    } catch (err) {
      if (attempt >= 4 || !String(err).includes('ERR_NETWORK_CHANGED')) throw err;
    }
  }
}

async function signIn(token: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await open(page, `${up.url}/`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await eventually(() => page.getByRole('heading', { name: 'Repositories', level: 1 }).isVisible()).toBe(true);
  return page;
}

/** Polls until the assertion holds: pages load and update asynchronously (vitest's default is 1 s). */
const eventually = <T>(probe: () => Promise<T> | T, timeout = 30_000) => expect.poll(probe, { timeout, interval: 100 });

const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `dashboard-${name}.png`), fullPage: true });

beforeAll(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  redis = await startRedis();
  work = await mkdtemp(join(tmpdir(), 'slipway-dashboard-'));
  ports = { staging: await freePort(), production: await freePort() };
  await removeDeployments(dockerClient(undefined), REPO, `127.0.0.1:5000/${REPO}`);
  git = await startGitServer({ root: join(work, 'git') });
  sample = await SampleRepo.create(work, REPO);
  const base = loadConfig({});
  up = await startUp({ ...base, sourceAllow: parseSourceAllow(LOCAL_SOURCES), redisUrl: redis.url, port: 0, adminToken: ADMIN_TOKEN, webhookSecret: 'dashboard-test-secret', dataDir: join(work, 'slipway'), logLevel: 'warn' });
  api = new DemoClient(up.url, ADMIN_TOKEN);
  await api.call('PUT', `/api/repos/${REPO}`, config(), 'application/yaml');
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  await tearDown(
    () => browser?.close(),
    () => up?.close(),
    () => git?.close(),
    () => removeDeployments(dockerClient(undefined), REPO, `127.0.0.1:5000/${REPO}`),
    () => redis?.stop(),
    () => (work ? rm(work, { recursive: true, force: true }) : undefined),
  );
}, 120_000);

describe('dashboard in a real browser', () => {
  afterEach(() => {
    expect(pageErrors).toEqual([]);
  });

  it('refuses a wrong token and signs in with a real one', async () => {
    const page = await browser.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await open(page, `${up.url}/`);
    await page.getByLabel('API token').fill('not-a-token');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await eventually(() => page.getByRole('alert').textContent()).toContain('not accepted');
    expect(await page.evaluate(() => sessionStorage.getItem('slipway.token'))).toBeNull();

    await page.getByLabel('API token').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await eventually(() => page.getByRole('heading', { name: REPO }).isVisible()).toBe(true);
    expect(await page.locator('#session').textContent()).toContain('Signed in as admin (admin)');
    // The token lives in this tab's sessionStorage, and a reload keeps the session.
    expect(await page.evaluate(() => sessionStorage.getItem('slipway.token'))).toBe(ADMIN_TOKEN);
    await open(page);
    await eventually(() => page.getByRole('heading', { name: REPO }).isVisible()).toBe(true);
    await page.close();
  });

  it('previews rules while they are edited and shows problems at their line', async () => {
    const page = await signIn(ADMIN_TOKEN);
    await page.goto(`${up.url}/#/repos/${REPO}/rules`);
    const preview = page.locator('#preview');
    await eventually(() => preview.textContent()).toContain('main-0000000');

    const editor = page.getByLabel('Configuration (YAML)');
    const text = await editor.inputValue();
    expect(text).toContain('{sourceref}-{sha:7}');
    await editor.fill(text.replace('- edge', '- nightly'));
    await eventually(() => preview.locator('.tag').allTextContents()).toEqual(['nightly', 'main-0000000']);

    // Another ref: a tag push matches no rule, and the preview says why.
    await page.getByLabel('Ref', { exact: true }).fill('refs/tags/v1.0.0');
    await eventually(() => preview.textContent()).toContain('Nothing would be built');
    expect(await preview.textContent()).toContain('edge');
    await page.getByLabel('Ref', { exact: true }).fill('refs/heads/main');

    // An invalid regex: the problem is listed with the line of `match`, and marked in the gutter.
    const broken = text.replace('match: main', 'match: "/[unclosed/"');
    await editor.fill(broken);
    const matchLine = broken.split('\n').findIndex((l) => l.includes('match:')) + 1;
    const problems = page.getByRole('list', { name: 'Problems' });
    await eventually(() => problems.textContent()).toContain('rules[0].match');
    expect(await problems.textContent()).toContain(`Line ${matchLine}`);
    expect(await page.locator('.gutter .bad').allTextContents()).toEqual([`! ${matchLine}`]);
    await shot(page, 'rules-problem');

    // Saving an invalid config is refused whole and changes nothing on the server.
    await page.getByRole('button', { name: 'Save' }).click();
    await eventually(() => problems.textContent()).toContain(`Line ${matchLine}`);
    expect((await api.get<{ rules: { match: string }[] }>(`/api/repos/${REPO}`)).rules[0]!.match).toBe('main');

    // Fixing it clears the problems; saving stores it.
    await editor.fill(text.replace('- edge', '- edge\n      - nightly'));
    await eventually(() => page.locator('#problems-summary').textContent()).toBe('No problems.');
    await page.getByRole('button', { name: 'Save' }).click();
    await eventually(() => page.getByText('Saved.').isVisible()).toBe(true);
    expect((await api.get<{ rules: { tags: string[] }[] }>(`/api/repos/${REPO}`)).rules[0]!.tags).toContain('nightly');

    // Adding a repository: a new config saved from the dashboard, which then edits it in place.
    await page.getByRole('link', { name: 'Repositories' }).click();
    await page.getByRole('link', { name: 'Add repository' }).click();
    await eventually(() => editor.inputValue()).toContain('repository: acme/web');
    await editor.fill((await editor.inputValue()).replace('acme/web', 'dashboard-test/added').replace('acme/web', 'dashboard-test/added'));
    await page.getByRole('button', { name: 'Save' }).click();
    await eventually(() => page.url()).toContain('#/repos/dashboard-test/added/rules');
    expect((await api.get<{ image: string }>('/api/repos/dashboard-test/added')).image).toBe('127.0.0.1:5000/dashboard-test/added');
    await page.close();
  });

  it("streams a build's log live and shows the result without a reload", async () => {
    const commit = await sample.commit(files('v1', true), 'hello v1');
    const id = await push(commit);
    const page = await signIn(ADMIN_TOKEN);
    await page.goto(`${up.url}/#/builds/${id}`);
    await page.evaluate(() => ((globalThis as unknown as { marker: string }).marker = 'same page'));
    const status = page.locator('#build-status');
    const log = page.locator('#log');
    // While the build runs (its RUN step sleeps), its output already arrives line by line.
    await eventually(() => log.textContent(), 60_000).toMatch(/^#\d+ compiling hello$/m);
    expect(await status.textContent()).toMatch(/queued|running/);
    expect(await page.getByRole('button', { name: 'Cancel' }).isEnabled()).toBe(true);
    await shot(page, 'build-running');

    await eventually(() => status.textContent(), 120_000).toContain('succeeded');
    await eventually(() => log.textContent()).toContain('pushed');
    v1 = await finished(id);
    expect(v1.status).toBe('succeeded');
    expect(await page.locator('#build-digest code').getAttribute('title')).toBe(v1.digest);
    expect(await page.locator('#build-tags').textContent()).toContain(`main-${commit.sha.slice(0, 7)}`);
    expect(await page.getByRole('button', { name: 'Cancel' }).count()).toBe(0);
    await eventually(() => page.locator('#log-state').textContent()).toContain('Log complete: the build succeeded');
    // The staging rollout it triggered appears on the page too, and runs to its end.
    await eventually(() => page.locator('#build-rollouts').textContent(), 120_000).toContain('staging revision 1 ● succeeded');
    expect(await page.evaluate(() => (globalThis as unknown as { marker?: string }).marker)).toBe('same page');
    await shot(page, 'build-done');
    await page.close();
  }, 240_000);

  it('promotes with one click after a confirmation naming both digests, and shows the new revision live', async () => {
    await running('staging', v1.digest!);
    // Production first runs v1 (promoted through the API), staging then gets v2 from a push.
    const first = await api.call<DeploymentRecord>('POST', `/api/repos/${REPO}/environments/production/promote`, {});
    expect(first.status).toBe(202);
    await running('production', v1.digest!);
    const v2 = await finished(await push(await sample.commit(files('v2'), 'hello v2')));
    expect(v2.status).toBe('succeeded');
    await running('staging', v2.digest!);

    const page = await signIn(ADMIN_TOKEN);
    await page.goto(`${up.url}/#/repos/${REPO}/environments/production`);
    await page.evaluate(() => ((globalThis as unknown as { marker: string }).marker = 'same page'));
    const revision = page.locator('#current-revision');
    await eventually(() => revision.textContent()).toBe('1');
    const promote = page.getByRole('button', { name: 'Promote', exact: true });
    expect(await promote.isEnabled()).toBe(true);
    await promote.click();

    const dialog = page.getByRole('dialog');
    const words = await dialog.textContent();
    expect(words).toContain(v2.digest);
    expect(words).toContain(`replaces ${v1.digest}`);
    await shot(page, 'promote-confirm');
    // Cancel changes nothing.
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect(await dialog.count()).toBe(0);
    const after = await api.get<{ history: DeploymentRecord[] }>(`/api/repos/${REPO}/environments/production`);
    expect(after.history).toHaveLength(1);

    await promote.click();
    await page.getByRole('dialog').getByRole('button', { name: 'Promote' }).click();
    // While it rolls out, the page shows the rollout and keeps a second promotion from starting.
    await eventually(() => page.getByRole('heading', { name: 'Rollout in progress: revision 2' }).isVisible()).toBe(true);
    expect(await promote.isDisabled()).toBe(true);
    expect(await page.locator('#promote-reason').textContent()).toContain('A rollout is running here (revision 2');
    // The rollout runs to its end (a failed one names its reason here)…
    const promoted = await running('production', v2.digest!);
    expect(promoted.revision).toBe(2);
    // …and the page shows production's new revision live, with no reload.
    await eventually(() => revision.textContent()).toBe('2');
    expect(await page.locator('#current-digest code').getAttribute('title')).toBe(v2.digest);
    expect(await page.evaluate(() => (globalThis as unknown as { marker?: string }).marker)).toBe('same page');
    const history = await api.get<{ current: DeploymentRecord }>(`/api/repos/${REPO}/environments/production`);
    expect(history.current).toMatchObject({ revision: 2, digest: v2.digest, trigger: 'promote', by: 'admin' });
    await shot(page, 'promoted');

    // /metrics counted what happened (src/metrics, wired into the API).
    const metrics = await (await fetch(`${up.url}/metrics`)).text();
    expect(metrics).toMatch(/^slipway_builds_total\{outcome="succeeded"\} [1-9]/m);
    expect(metrics).toMatch(/^slipway_rollouts_total\{environment="production",outcome="succeeded"\} 2$/m);
    expect(metrics).toMatch(/^slipway_build_duration_seconds_count\{outcome="succeeded"\} [1-9]/m);

    // The audit log names it.
    await page.goto(`${up.url}/#/audit`);
    await eventually(() => page.locator('table').first().textContent()).toContain('promote');
    await page.goto(`${up.url}/#/`);
    await eventually(() => page.getByRole('link', { name: 'production' }).isVisible()).toBe(true);
    await shot(page, 'repositories');
    await page.close();
  }, 600_000);

  it("shows a repository's settings; an admin maps its image prefix and gives it its own webhook secret, shown once", async () => {
    const page = await signIn(ADMIN_TOKEN);
    await page.goto(`${up.url}/#/`);
    await page.getByRole('link', { name: `Settings of ${REPO}` }).click();
    await eventually(() => page.locator('#shown-secret').textContent()).toContain('the shared SLIPWAY_WEBHOOK_SECRET');
    expect(await page.locator('dl.settings').textContent()).toContain('(the default)');

    await page.getByLabel('Images of this repository must lie under').fill('registry.example.com/team');
    await page.getByRole('button', { name: 'Save prefix' }).click();
    await eventually(() => page.locator('#shown-prefix').textContent()).toBe('registry.example.com/team');
    expect((await api.call<{ imagePrefix: string }>('GET', `/api/repos/${REPO}/settings`)).body.imagePrefix).toBe('registry.example.com/team');
    await page.getByRole('button', { name: 'Use the default' }).click();
    await eventually(() => page.locator('dl.settings').textContent()).toContain('(the default)');

    await page.getByRole('button', { name: 'Generate own secret' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Generate secret' }).click();
    await eventually(() => page.locator('#webhook-secret-value').textContent()).toMatch(/^[0-9a-f]{64}$/);
    const secret = (await page.locator('#webhook-secret-value').textContent())!;
    expect(await page.locator('#shown-secret').textContent()).toContain('its own');
    await page.getByRole('button', { name: 'Use the shared secret' }).click();
    await eventually(() => page.locator('#shown-secret').textContent()).toContain('the shared');
    expect(await page.locator('main').textContent()).not.toContain(secret);
    await page.close();

    const { body } = await api.call<{ token: string }>('POST', '/api/tokens', { name: 'dash-settings-viewer', role: 'viewer' });
    const viewer = await signIn(body.token);
    await viewer.goto(`${up.url}/#/repos/${REPO}/settings`);
    await eventually(() => viewer.locator('.reason').textContent()).toContain('Settings are changed by admins; you are viewer');
    expect(await viewer.getByRole('button', { name: 'Save prefix' }).count()).toBe(0);
    await viewer.close();
  });

  it('shows a viewer Promote and Roll back disabled, with the reason', async () => {
    const { body } = await api.call<{ token: string }>('POST', '/api/tokens', { name: 'dash-viewer', role: 'viewer' });
    const page = await signIn(body.token);
    await page.goto(`${up.url}/#/repos/${REPO}/environments/production`);
    const promote = page.getByRole('button', { name: 'Promote', exact: true });
    await eventually(() => promote.isVisible()).toBe(true);
    expect(await promote.isDisabled()).toBe(true);
    expect(await page.locator('#promote-reason').textContent()).toContain('needs the deployer role; you are viewer');
    expect(await page.getByRole('button', { name: 'Roll back' }).isDisabled()).toBe(true);
    // The reason is the button's description for assistive technology too.
    expect(await promote.getAttribute('aria-describedby')).toBe('promote-reason');
    await shot(page, 'viewer');
    await page.close();
  });
});
