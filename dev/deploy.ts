import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { loadConfig } from '../src/config.js';
import { DeploymentStore, DeployWorker, SwarmTarget, type DeployWorkerOptions } from '../src/deploy/index.js';
import { startServe, type ServeHandle } from '../src/main.js';
import { AuditStore, buildKeys, encodeBuild, EventBus, type BuildRecord } from '../src/store/index.js';
import type { TestImage } from './deploy-images.js';
import { startRedis, type TestRedis } from './redis.js';
import { LOCAL_SOURCES } from './sources.js';

export const ADMIN = 'deploy-tests-admin-token';

export interface Answer {
  status: number;
  body: any;
}

export async function api(url: string, method: string, path: string, o: { token?: string; json?: unknown } = {}): Promise<Answer> {
  const headers: Record<string, string> = { authorization: `Bearer ${o.token ?? ADMIN}` };
  if (o.json !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${url}${path}`, { method, headers, ...(o.json !== undefined ? { body: JSON.stringify(o.json) } : {}) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // not JSON
  }
  return { status: res.status, body };
}

export interface DeployStack {
  url: string;
  redis: TestRedis;
  client: Redis;
  docker: Docker;
  store: DeploymentStore;
  serve: ServeHandle;
  /** The in-process deploy worker (what `slipway worker` runs); replaceable to test restarts. */
  worker: DeployWorker;
  startWorker(): DeployWorker;
  token(name: string, role: 'viewer' | 'developer' | 'deployer' | 'admin'): Promise<string>;
  close(): Promise<void>;
}

/** A real redis-server, a real `serve` on port 0, and a deploy worker on the host's Swarm. */
export async function startDeployStack(opts: Partial<DeployWorkerOptions> = {}): Promise<DeployStack> {
  const redis = await startRedis();
  const config = loadConfig({
    SLIPWAY_REDIS_URL: redis.url,
    SLIPWAY_PORT: '0',
    SLIPWAY_WEBHOOK_SECRET: 'deploy-tests-secret',
    SLIPWAY_ADMIN_TOKEN: ADMIN,
    SLIPWAY_LOG_LEVEL: 'silent',
    SLIPWAY_SOURCE_ALLOW: LOCAL_SOURCES,
  });
  const serve = await startServe(config);
  const client = new Redis(redis.url, { maxRetriesPerRequest: null });
  const docker = new Docker({ socketPath: '/var/run/docker.sock' });
  const store = new DeploymentStore(client);
  const log = pino({ level: 'silent' });
  const make = () =>
    new DeployWorker({
      store,
      target: new SwarmTarget({ docker, pollMs: 200 }),
      audit: new AuditStore(client),
      events: new EventBus(client),
      log,
      pollMs: 100,
      lockTtlMs: 5000,
      ...opts,
    });
  const stack: DeployStack = {
    url: serve.url,
    redis,
    client,
    docker,
    store,
    serve,
    worker: make(),
    startWorker() {
      stack.worker = make();
      stack.worker.start();
      return stack.worker;
    },
    async token(name, role) {
      const res = await api(serve.url, 'POST', '/api/tokens', { json: { name, role } });
      if (res.status !== 201 && res.status !== 200) throw new Error(`token: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.token as string;
    },
    async close() {
      await stack.worker.stop();
      await serve.close();
      client.disconnect();
      await redis.stop();
    },
  };
  stack.worker.start();
  return stack;
}

/** Polls `fn` until it returns a truthy value (or throws after `timeoutMs`). */
export async function eventually<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs = 180_000, everyMs = 250): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Waits until a deployment has ended and answers its record. */
export async function settled(url: string, id: string, timeoutMs = 240_000, everyMs = 250): Promise<any> {
  let last: unknown = null;
  try {
    return await eventually(async () => {
      const r = await api(url, 'GET', `/api/deployments/${id}`);
      last = r.body;
      return r.status === 200 && !['pending', 'running'].includes(r.body.status) ? r.body : null;
    }, timeoutMs, everyMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}; deployment ${id} last seen as ${JSON.stringify(last)}`);
  }
}

/** What the environment's published port serves now (trimmed body), or null when nothing answers. */
export async function served(port: number): Promise<string | null> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(3000) });
    return res.status === 200 ? (await res.text()).trim() : null;
  } catch {
    return null;
  }
}

export interface LoadResult {
  requests: number;
  failed: number;
  versions: Record<string, number>;
  errors: string[];
}

/** HTTP load from another process (dev/deploy-load.ts) against a loopback port. */
export async function startLoad(port: number, concurrency = 8): Promise<{ stop(): Promise<LoadResult> }> {
  const script = fileURLToPath(new URL('./deploy-load.ts', import.meta.url));
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script, `http://127.0.0.1:${port}/`, String(concurrency)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (d: string) => (out += d));
  await eventually(async () => out.includes('ready\n'), 30_000, 50);
  return {
    async stop() {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.stdin!.write('stop\n');
      await exited;
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (!line) throw new Error(`load generator printed no result: ${out}`);
      return JSON.parse(line) as LoadResult;
    },
  };
}

/** Removes every Swarm service, config and network slipway made for `repo` (labels prove ownership). */
export async function removeDeployObjects(docker: Docker, repo: string): Promise<void> {
  const label = [`io.slipway.kind=deploy`, `io.slipway.repo=${repo}`];
  for (const s of await docker.listServices({ filters: { label } })) await docker.getService(s.ID).remove().catch(() => undefined);
  for (const c of (await docker.listConfigs({ filters: { label } })) as { ID: string }[]) {
    await eventually(async () => {
      await docker.getConfig(c.ID).remove().catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 404) throw err;
      });
      return true;
    }, 60_000);
  }
  for (const n of await docker.listNetworks({ filters: { label } })) {
    await eventually(async () => {
      await docker.getNetwork(n.Id).remove().catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 404) throw err;
      });
      return true;
    }, 60_000);
  }
}

let recordedBuilds = 0;

/**
 * A succeeded build of `rule` in `repo` that pushed `image`, written as the lanes record one (indexed
 * for the repository): what a release of services deploys by build id.
 */
export async function recordBuild(client: Redis, repo: string, image: TestImage, o: { rule?: string; deploy?: string[] } = {}): Promise<BuildRecord> {
  const rule = o.rule ?? 'app';
  const n = ++recordedBuilds;
  const now = new Date().toISOString();
  const build: BuildRecord = {
    id: `b-${repo.replace(/[^a-z0-9]+/g, '-')}-${n}-${image.tag}`, repo, ref: 'refs/heads/main', sha: String(n).repeat(40).slice(0, 40), rules: [rule], tags: ['edge'],
    image: image.repository, status: 'succeeded', digest: image.digest, error: null, queuedAt: now, startedAt: now, finishedAt: now, deployments: [],
    context: '.', dockerfile: 'Dockerfile', build_args: {}, cache: false, deploy: o.deploy ?? [], cloneUrl: null, deliveryId: null, trigger: 'webhook',
    by: 'github:octocat', supersededBy: null, warnings: [],
  };
  await client.hset(buildKeys.record(build.id), ...encodeBuild(build));
  await client.zadd(buildKeys.byRepo(repo), Date.now(), build.id);
  return build;
}
