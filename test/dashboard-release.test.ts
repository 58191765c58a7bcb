import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, tearDown } from './support/browser.js';
import { DemoClient } from '../demo/api-client.js';
import { loadConfig } from '../src/config.js';
import { startServe, type ServeHandle } from '../src/main.js';
import { DeploymentStore } from '../src/deploy/index.js';
import { environmentSpecs, validateConfig, type EnvironmentSpec } from '../src/rules/index.js';
import type { DeploymentRecord, ReleaseService } from '../src/store/records.js';
import { startRedis, type TestRedis } from '../dev/redis.js';
import { LOCAL_SOURCES } from '../dev/sources.js';

/**
 * The environment page of an application of several services ("releases", issue #16) in a real
 * browser (Debian's Chromium through playwright-core) against a real `serve` process on a real
 * Redis. No Swarm: the releases are written with the DeploymentStore as a deploy worker would leave
 * them, and the only thing stubbed is the live Swarm tasks of a rollout in progress (the serve
 * process reads them from Docker, which runs no such service here).
 */

const REPO = 'dashboard-release/shop';
const ADMIN_TOKEN = `dash-release-admin-${Date.now().toString(36)}`;
const services = (port: number) => ({
  migrate: { build: 'main', role: 'job', command: ['true'] },
  web: { build: 'main', ports: [`${port}:8080`] },
  worker: { build: 'main', depends_on: ['web'] },
});
const CONFIG = {
  repository: REPO,
  image: `127.0.0.1:5000/${REPO}`,
  environments: {
    staging: { service: 'shop-staging', services: services(18190) },
    production: { service: 'shop-production', promote_from: 'staging', services: services(18192) },
    // A single-service environment beside them keeps the page it always had.
    preview: { service: 'shop-preview', ports: ['18193:8080'] },
  },
  rules: [{ name: 'main', source: 'branch', match: 'main', tags: ['edge'], deploy: 'staging' }],
};
const ORDER = ['migrate', 'web', 'worker'] as const;
type Name = (typeof ORDER)[number];
const ROLE: Record<Name, ReleaseService['role']> = { migrate: 'job', web: 'web', worker: 'worker' };

/** Digests that are told apart at a glance: sha256:aaaa…, sha256:bbbb… */
const D = (c: string) => `sha256:${c.repeat(64)}`;
const short = (c: string) => `sha256:${c.repeat(12)}`;

let redis: TestRedis;
let client: Redis;
let serve: ServeHandle;
let work: string;
let browser: Browser;
let api: DemoClient;
let store: DeploymentStore;
let specs: Record<string, EnvironmentSpec>;
const pageErrors: string[] = [];
let clock = Date.parse('2025-01-01T10:00:00Z');

interface ReleaseOpts {
  trigger?: DeploymentRecord['trigger'];
  status?: DeploymentRecord['status'];
  /** Per service: its status in the release (default succeeded, or unchanged where the digest stayed) and error. */
  entries?: Partial<Record<Name, Partial<Pick<ReleaseService, 'status' | 'error'>>>>;
  error?: string;
}

/**
 * A release of `env` running `digests`, ended as `opts.status` (default succeeded), with `before`
 * filled from the environment's current release as the worker fills it when the release starts.
 */
async function release(env: string, digests: Record<Name, string>, opts: ReleaseOpts = {}): Promise<DeploymentRecord> {
  const key = { repo: REPO, environment: env };
  const current = await store.current(key);
  const config = specs[env]!;
  const at = (ms: number) => new Date((clock += ms)).toISOString();
  const requestedAt = at(60_000);
  const entries: ReleaseService[] = ORDER.map((name) => ({
    name,
    service: `${config.service}-${name}`,
    role: ROLE[name],
    image: CONFIG.image,
    digest: digests[name],
    build: null,
    before: null,
    status: 'pending',
    error: null,
  }));
  const record: DeploymentRecord = {
    id: store.newId(),
    repo: REPO,
    environment: env,
    revision: await store.nextRevision(key),
    digest: digests.web,
    image: CONFIG.image,
    build: null,
    services: entries,
    trigger: opts.trigger ?? 'build',
    by: opts.trigger === 'promote' || opts.trigger === 'rollback' ? 'admin' : 'slipway',
    status: 'pending',
    requestedAt,
    startedAt: null,
    finishedAt: null,
    error: null,
  };
  await store.enqueue(record, { config });
  const status = opts.status ?? 'succeeded';
  const ended: DeploymentRecord = {
    ...record,
    status,
    phase: status === 'succeeded' ? 'rolling_out' : 'rolling_back',
    startedAt: at(1_000),
    finishedAt: at(42_000),
    error: opts.error ?? null,
    services: entries.map((e) => {
      const before = current?.services?.find((c) => c.name === e.name)?.digest ?? null;
      const fallback = e.role !== 'job' && before === e.digest ? 'unchanged' : 'succeeded';
      return { ...e, before, status: fallback, error: null, ...opts.entries?.[e.name as Name] };
    }),
  };
  await store.finish(ended);
  return ended;
}

/** Opens a page signed in as the admin. */
async function signIn(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('pageerror', (err) => pageErrors.push(err.message));
  await page.goto(`${serve.url}/`);
  await page.getByLabel('API token').fill(ADMIN_TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await eventually(() => page.getByRole('heading', { name: 'Repositories', level: 1 }).isVisible()).toBe(true);
  return page;
}

async function openEnv(page: Page, env: string): Promise<void> {
  await page.goto(`${serve.url}/#/repos/${REPO}/environments/${env}`);
  await eventually(() => page.locator('#current-revision').isVisible()).toBe(true);
}

/** The rows of the table captioned `caption`, each as its cells' text. */
async function rows(page: Page, caption: string): Promise<string[][]> {
  const table = page.locator('table', { has: page.locator('caption', { hasText: caption }) });
  return table.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => (td.textContent ?? '').replace(/\s+/g, ' ').trim())));
}

/** The `name: before → after` lines of the open dialog. */
async function dialogChanges(page: Page): Promise<string[]> {
  return page.getByRole('dialog').locator('ul.release-changes li').allTextContents();
}

const ARTIFACTS = join(process.cwd(), 'test-artifacts');
const shot = (page: Page, name: string) => page.screenshot({ path: join(ARTIFACTS, `dashboard-release-${name}.png`), fullPage: true });

const eventually = <T>(probe: () => Promise<T> | T, timeout = 20_000) => expect.poll(probe, { timeout, interval: 100 });

beforeAll(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  redis = await startRedis();
  work = await mkdtemp(join(tmpdir(), 'slipway-dashboard-release-'));
  serve = await startServe(
    loadConfig({
      SLIPWAY_REDIS_URL: redis.url,
      SLIPWAY_PORT: '0',
      SLIPWAY_WEBHOOK_SECRET: 'dashboard-release-secret',
      SLIPWAY_ADMIN_TOKEN: ADMIN_TOKEN,
      SLIPWAY_LOG_LEVEL: 'silent',
      SLIPWAY_DATA_DIR: work,
      SLIPWAY_SOURCE_ALLOW: LOCAL_SOURCES,
    }),
  );
  api = new DemoClient(serve.url, ADMIN_TOKEN);
  await api.call('PUT', `/api/repos/${REPO}`, CONFIG);
  client = new Redis(redis.url);
  store = new DeploymentStore(client);
  specs = environmentSpecs(validateConfig(CONFIG));
  browser = await launchChromium();

  // staging: 1 everything A; 2 migrate and web B, worker stays A; 3 all C, rolled back (the worker never got healthy).
  await release('staging', { migrate: D('a'), web: D('a'), worker: D('a') });
  await release('staging', { migrate: D('b'), web: D('b'), worker: D('a') });
  await release('staging', { migrate: D('c'), web: D('c'), worker: D('c') }, {
    status: 'rolled_back',
    entries: { web: { status: 'rolled_back' }, worker: { status: 'rolled_back', error: 'task exited with code 1' } },
    error: `service worker (shop-staging-worker) did not become healthy: task exited with code 1; restored web to ${D('b').slice(0, 19)}`,
  });
  // production runs web B like staging, but its migrate and worker differ.
  await release('production', { migrate: D('a'), web: D('b'), worker: D('e') }, { trigger: 'promote' });
}, 120_000);

afterAll(async () => {
  await tearDown(
    () => browser?.close(),
    () => serve?.close(),
    () => client?.quit(),
    () => redis?.stop(),
    () => (work ? rm(work, { recursive: true, force: true }) : undefined),
  );
}, 60_000);

describe('environment page of an application of several services', () => {
  afterEach(() => {
    expect(pageErrors).toEqual([]);
  });

  it('keeps the single-service view for an environment without services', async () => {
    const key = { repo: REPO, environment: 'preview' };
    const record: DeploymentRecord = {
      id: store.newId(), repo: REPO, environment: 'preview', revision: await store.nextRevision(key), digest: D('f'), image: CONFIG.image, build: null,
      trigger: 'manual', by: 'admin', status: 'pending', requestedAt: new Date().toISOString(), startedAt: null, finishedAt: null, error: null,
    };
    await store.enqueue(record, { config: specs.preview! });
    await store.finish({ ...record, status: 'succeeded', startedAt: new Date().toISOString(), finishedAt: new Date().toISOString() });
    const page = await signIn();
    await openEnv(page, 'preview');
    expect(await page.locator('#current-digest code').getAttribute('title')).toBe(D('f'));
    expect(await page.locator('#current').textContent()).toContain('shop-preview');
    expect(await page.getByRole('table', { name: 'Services of this environment' }).count()).toBe(0);
    expect((await rows(page, 'Rollouts of preview')).map((r) => r.slice(0, 4))).toEqual([['1', '● succeeded', 'manual', short('f')]]);
    await page.close();
  });

  it("previews each environment's release plan in the rules editor, and follows edits of depends_on", async () => {
    const page = await signIn();
    await page.goto(`${serve.url}/#/repos/${REPO}/rules`);
    const caption = 'Release of staging: services in update order';
    await eventually(async () => (await rows(page, caption)).length).toBe(3);
    expect(await rows(page, caption)).toEqual([
      ['0', 'shop-staging-migrate', 'job', 'rule main', 'runs once', '—', '—', 'updates it'],
      ['1', 'shop-staging-web', 'web', 'rule main', '1', '18190:8080', 'the jobs', 'updates it'],
      ['2', 'shop-staging-worker', 'worker', 'rule main', '1', '—', 'web', 'updates it'],
    ]);
    expect((await rows(page, 'Release of production: services in update order')).map((r) => r[1])).toEqual(['shop-production-migrate', 'shop-production-web', 'shop-production-worker']);
    // The worker no longer waits for web: both update in step 1. A ref no rule builds updates nothing.
    const editor = page.getByLabel('Configuration (YAML)');
    await editor.fill((await editor.inputValue()).replace(/\n\s+depends_on:\n\s+- web(?=\n)/, ''));
    await eventually(async () => (await rows(page, caption)).map((r) => r[0]).join(' ')).toBe('0 1 1');
    await page.getByLabel('Ref').fill('refs/heads/feature');
    await eventually(async () => (await rows(page, caption)).map((r) => r[7]).join(', ')).toBe('keeps what runs, keeps what runs, keeps what runs');
    await page.close();
  });

  it('shows every service with what it runs now, and what each release changed', async () => {
    const page = await signIn();
    await openEnv(page, 'staging');
    expect(await page.locator('#current-revision').textContent()).toBe('2');
    // No single digest line: a table of services in rollout order.
    expect(await page.locator('#current-digest').count()).toBe(0);
    expect(await page.getByRole('table', { name: 'Services of this environment' }).count()).toBe(1);
    const now = await rows(page, 'Services of this environment');
    expect(now.map((r) => r.slice(0, 7))).toEqual([
      ['migrate', 'job', 'shop-staging-migrate', 'runs once per release', '—', 'build: main', short('b')],
      ['web', 'web', 'shop-staging-web', '1', '18190:8080', 'build: main', short('b')],
      ['worker', 'worker', 'shop-staging-worker', '1', '—', 'build: main', short('a')],
    ]);
    expect(now.map((r) => r[7])).toEqual(['● succeeded', '● succeeded', '= unchanged']);
    // The full digest is each cell's title.
    expect(await page.locator('table').first().locator('tbody tr').nth(1).locator('code.digest').getAttribute('title')).toBe(D('b'));
    // The URL is the web service's port.
    expect(await page.getByRole('link', { name: /:18190\/$/ }).count()).toBe(1);

    const history = await rows(page, 'Releases of staging');
    expect(history.map((r) => [r[0], r[1]])).toEqual([['3', '↶ rolled back'], ['2', '● succeeded'], ['1', '● succeeded']]);
    const changes = (rev: number) => page.locator('table', { has: page.locator('caption', { hasText: 'Releases of staging' }) })
      .locator('tbody tr').nth(3 - rev).locator('ul.changes li').allTextContents();
    expect(await changes(3)).toEqual([
      `migrate ${short('b')} → ${short('c')}`,
      `web ${short('b')} → ${short('c')} ↶ rolled back`,
      `worker ${short('a')} → ${short('c')} ↶ rolled back`,
    ]);
    // The release's error names the service and what was restored.
    expect(history[0]![7]).toContain('service worker (shop-staging-worker) did not become healthy: task exited with code 1');
    expect(await changes(2)).toEqual([`migrate ${short('a')} → ${short('b')}`, `web ${short('a')} → ${short('b')}`, 'worker unchanged']);
    expect(await changes(1)).toEqual([`migrate new ${short('a')}`, `web new ${short('a')}`, `worker new ${short('a')}`]);
    await shot(page, 'staging');
    await page.close();
  });

  it('compares every service for promote, and names each before → after in its confirmation', async () => {
    const page = await signIn();
    await openEnv(page, 'production');
    const promote = page.getByRole('button', { name: 'Promote', exact: true });
    // web runs the same digest in both (the release's top-level digest), migrate and worker do not: promote is open.
    expect(await page.locator('#promote-reason').count()).toBe(0);
    expect(await promote.isEnabled()).toBe(true);
    await promote.click();
    const dialog = page.getByRole('dialog');
    expect(await dialog.textContent()).toContain('Roll out what staging runs now (revision 2) to production, service by service');
    expect(await dialogChanges(page)).toEqual([
      `migrate: ${D('a')} → ${D('b')}`,
      `web: ${D('b')} → ${D('b')} (unchanged)`,
      `worker: ${D('e')} → ${D('a')}`,
    ]);
    expect(await dialog.textContent()).toContain('It replaces revision 1.');
    await shot(page, 'promote-confirm');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect(await dialog.count()).toBe(0);
    expect((await api.get<{ history: DeploymentRecord[] }>(`/api/repos/${REPO}/environments/production`)).history).toHaveLength(1);
    // Only one release: nothing earlier to roll back to.
    expect(await page.locator('#rollback-reason').textContent()).toContain('no earlier good revision');

    // Once production runs exactly what staging runs, promoting is refused with the reason…
    await release('production', { migrate: D('b'), web: D('b'), worker: D('a') }, { trigger: 'promote' });
    // …also after a release that changed nothing (rolled out again).
    await release('production', { migrate: D('b'), web: D('b'), worker: D('a') }, { trigger: 'manual' });
    await page.reload();
    await eventually(() => page.locator('#current-revision').textContent()).toBe('3');
    expect(await promote.isDisabled()).toBe(true);
    expect(await page.locator('#promote-reason').textContent()).toContain('production already runs what staging runs');
    await page.close();
  });

  it("rolls back to the newest earlier release whose services' digests differ, naming each service", async () => {
    const page = await signIn();
    await openEnv(page, 'production');
    // Revision 2 runs what 3 runs; revision 1 differs (web alike, migrate and worker not), though its top-level digest is the same.
    const rollback = page.getByRole('button', { name: 'Roll back' });
    expect(await rollback.isEnabled()).toBe(true);
    await rollback.click();
    const dialog = page.getByRole('dialog');
    expect(await dialog.textContent()).toContain('Roll production back to revision 1, service by service');
    expect(await dialogChanges(page)).toEqual([
      `migrate: ${D('b')} → ${D('a')}`,
      `web: ${D('b')} → ${D('b')} (unchanged)`,
      `worker: ${D('a')} → ${D('e')}`,
    ]);
    expect(await dialog.textContent()).toContain('It replaces revision 3.');
    await shot(page, 'rollback-confirm');
    await dialog.getByRole('button', { name: 'Roll back' }).click();

    // The deployer queues revision 4 with revision 1's images; no worker runs here, so it waits, service by service.
    await eventually(() => page.getByRole('heading', { name: 'Rollout in progress: revision 4' }).isVisible()).toBe(true);
    const queued = (await api.get<{ history: DeploymentRecord[] }>(`/api/repos/${REPO}/environments/production`)).history[0]!;
    expect(queued).toMatchObject({ revision: 4, trigger: 'rollback', status: 'pending' });
    expect(queued.services?.map((e) => [e.name, e.digest])).toEqual([['migrate', D('a')], ['web', D('b')], ['worker', D('e')]]);
    const card = await rows(page, 'Services of this release');
    expect(card.map((r) => r.slice(0, 5))).toEqual([
      ['migrate', 'job', '○ pending', short('b'), short('a')],
      ['web', 'web', '○ pending', short('b'), `${short('b')} (same)`],
      ['worker', 'worker', '○ pending', short('a'), short('e')],
    ]);
    expect(await page.locator('.rollout').textContent()).toContain('Waiting for a deploy worker to start it.');
    // The history's queued release says what it is to change; revision 3 re-ran the job and changed nothing else.
    const history = page.locator('table', { has: page.locator('caption', { hasText: 'Releases of production' }) }).locator('tbody tr');
    expect(await history.nth(0).locator('ul.changes li').allTextContents()).toEqual([`migrate ${short('b')} → ${short('a')}`, `web same image ${short('b')}`, `worker ${short('a')} → ${short('e')}`]);
    expect(await history.nth(1).locator('ul.changes li').allTextContents()).toEqual([`migrate ran again ${short('b')}`, 'web unchanged', 'worker unchanged']);
    await shot(page, 'rollback-queued');
    expect(await page.locator('#promote-reason').textContent()).toContain('A rollout is running here (revision 4, pending)');
    expect(await rollback.isDisabled()).toBe(true);
    // Nothing runs it: end it, so the next test starts from a settled environment.
    await store.finish({ ...queued, status: 'failed', finishedAt: new Date().toISOString(), error: 'test: never run' });
    await page.close();
  });

  it("shows a release rolling out service by service with the updating service's old and new tasks, then rolling back", async () => {
    const key = { repo: REPO, environment: 'staging' };
    const current = (await store.current(key))!;
    expect(current.revision).toBe(2);
    // Revision 5: migrate ran, web is updating (one new task healthy, one starting, the old one still serving), worker waits.
    const revision = await store.nextRevision(key);
    const entries: ReleaseService[] = current.services!.map((e) => ({ ...e, before: e.digest, digest: D('d'), build: null, status: 'pending', error: null }));
    const { phase: _started, ...settled } = current;
    const pending: DeploymentRecord = { ...settled, id: store.newId(), revision, digest: D('d'), trigger: 'build', by: 'slipway', status: 'pending', requestedAt: new Date().toISOString(), startedAt: null, finishedAt: null, error: null, services: entries };
    await store.enqueue(pending, { config: specs.staging! });
    const mark = (statuses: Record<Name, ReleaseService['status']>, error: string | null = null): ReleaseService[] =>
      entries.map((e) => ({ ...e, status: statuses[e.name as Name], error: e.name === 'web' ? error : null }));
    const running: DeploymentRecord = { ...pending, status: 'running', startedAt: new Date(Date.now() - 30_000).toISOString(), phase: 'rolling_out', services: mark({ migrate: 'succeeded', web: 'running', worker: 'pending' }) };
    await store.save(running);

    // The serve process reads the rolling service's tasks from Swarm; this machine's Swarm runs no
    // shop-staging-web, so the tasks Swarm would report during the update are added to its answer.
    const tasks = [
      { id: 'newtask2aaaaaaaaaaaa', slot: 2, state: 'starting', desiredState: 'running', digest: D('d'), message: 'starting' },
      { id: 'newtask1aaaaaaaaaaaa', slot: 1, state: 'running', desiredState: 'running', digest: D('d'), message: 'started' },
      { id: 'oldtask2bbbbbbbbbbbb', slot: 2, state: 'running', desiredState: 'shutdown', digest: D('b'), message: 'started' },
      { id: 'oldtask1bbbbbbbbbbbb', slot: 1, state: 'shutdown', desiredState: 'shutdown', digest: D('b'), message: 'shutdown' },
    ];
    const page = await signIn();
    await page.route(`**/api/deployments/${running.id}`, async (route) => {
      const res = await route.fetch();
      const body = (await res.json()) as DeploymentRecord & { services: (ReleaseService & { tasks?: unknown })[] };
      body.services = body.services.map((e) => (e.status === 'running' ? { ...e, tasks } : e));
      await route.fulfill({ response: res, json: body });
    });
    await openEnv(page, 'staging');
    await eventually(() => page.getByRole('heading', { name: `Rollout in progress: revision ${revision}` }).isVisible()).toBe(true);
    const card = await rows(page, 'Services of this release');
    expect(card.map((r) => r.slice(0, 5))).toEqual([
      ['migrate', 'job', '● succeeded', short('b'), short('d')],
      ['web', 'web', '◐ running', short('b'), short('d')],
      ['worker', 'worker', '○ pending', short('a'), short('d')],
    ]);
    expect(await page.getByRole('heading', { name: 'Tasks of web (shop-staging-web), updating' }).isVisible()).toBe(true);
    const taskRows = await rows(page, 'Tasks of web, old and new');
    expect(taskRows.map((r) => r.slice(0, 6))).toEqual([
      ['newtask2aaaa', '2', 'new', '◐ starting', 'starting', 'running'],
      ['newtask1aaaa', '1', 'new', '● healthy', 'running', 'running'],
      ['oldtask2bbbb', '2', 'old', 'running', 'running', 'shutdown'],
      ['oldtask1bbbb', '1', 'old', 'shutdown', 'shutdown', 'shutdown'],
    ]);
    // "Now running" still shows revision 2's digests, and says web is updating and how far it got.
    const now = await rows(page, 'Services of this environment');
    expect(now[1]![6]).toBe(short('b'));
    expect(now[1]![7]).toContain('updating now: 1 of 2 new tasks healthy');
    expect(await page.locator('.rollout > p').first().textContent()).toMatch(/^◐ running · a release of 3 services \(build\) by slipway · running \d+s$/);
    expect(await page.locator('#rollout-phase').count()).toBe(0);
    await shot(page, 'rolling-out');

    // web did not become healthy: the release turns to rolling back.
    await store.save({ ...running, phase: 'rolling_back', services: mark({ migrate: 'succeeded', web: 'failed', worker: 'pending' }, 'task exited with code 137') });
    await page.reload();
    await eventually(() => page.getByRole('heading', { name: `Rollout in progress: revision ${revision} (rolling back)` }).isVisible()).toBe(true);
    expect(await page.locator('#rollout-phase').textContent()).toContain('Rolling back');
    const back = await rows(page, 'Services of this release');
    expect(back[1]!.slice(0, 3)).toEqual(['web', 'web', '✕ failed']);
    expect(back[1]![5]).toBe('task exited with code 137');
    expect((await rows(page, 'Services of this environment'))[1]![7]).toContain('failed, rolling back');
    await shot(page, 'rolling-back');

    // It ends rolled back: the history names it, and staging still runs revision 2.
    await store.finish({ ...running, phase: 'rolling_back', status: 'rolled_back', finishedAt: new Date().toISOString(), error: 'service web (shop-staging-web) did not become healthy: task exited with code 137; no other service had changed',
      services: mark({ migrate: 'succeeded', web: 'rolled_back', worker: 'pending' }, 'task exited with code 137') });
    await page.reload();
    await eventually(() => page.locator('ul.changes').first().textContent()).toContain('rolled back');
    expect(await page.locator('.rollout').count()).toBe(0);
    expect(await page.locator('#current-revision').textContent()).toBe('2');
    const top = page.locator('table', { has: page.locator('caption', { hasText: 'Releases of staging' }) }).locator('tbody tr').first();
    expect(await top.locator('ul.changes li').allTextContents()).toEqual([
      `migrate ${short('b')} → ${short('d')}`,
      `web ${short('b')} → ${short('d')} ↶ rolled back`,
      `worker ${short('a')} → ${short('d')} not reached`,
    ]);
    await page.close();
  });
});
