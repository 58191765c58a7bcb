import { createHmac, randomUUID } from 'node:crypto';
import { loadConfig } from '../src/config.js';
import { startServe, type ServeHandle } from '../src/main.js';
import { startRedis, type TestRedis, type TestRedisOptions } from './redis.js';
import { LOCAL_SOURCES } from './sources.js';

/** A real slipway intake on a Redis of its own, and a GitHub-like webhook client: for the intake suites and bench:builds. */

export const SECRET = 'it-is-a-secret-to-everybody';
export const PREVIOUS_SECRET = 'the-old-secret';
export const ADMIN = 'admin-token-for-tests';

export function sign(body: string | Buffer, secret = SECRET): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export interface Intake {
  redis: TestRedis;
  serve: ServeHandle;
  url: string;
  close(): Promise<void>;
}

/** A real redis-server and a real `serve` (port 0) on it. */
export async function startIntake(redisOpts: TestRedisOptions = {}, env: Record<string, string> = {}): Promise<Intake> {
  const redis = await startRedis(redisOpts);
  const config = loadConfig({
    SLIPWAY_REDIS_URL: redis.url,
    SLIPWAY_PORT: '0',
    SLIPWAY_WEBHOOK_SECRET: SECRET,
    SLIPWAY_WEBHOOK_SECRET_PREVIOUS: PREVIOUS_SECRET,
    SLIPWAY_ADMIN_TOKEN: ADMIN,
    SLIPWAY_LOG_LEVEL: 'silent',
    SLIPWAY_SOURCE_ALLOW: LOCAL_SOURCES,
    ...env,
  });
  const serve = await startServe(config);
  return {
    redis,
    serve,
    url: serve.url,
    close: async () => {
      await serve.close();
      await redis.stop();
    },
  };
}

export interface Answer {
  status: number;
  body: any;
}

export async function api(url: string, method: string, path: string, o: { token?: string | null; json?: unknown; text?: string; type?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  const token = o.token === undefined ? ADMIN : o.token;
  if (token) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (o.json !== undefined) {
    body = JSON.stringify(o.json);
    headers['content-type'] = 'application/json';
  } else if (o.text !== undefined) {
    body = o.text;
    headers['content-type'] = o.type ?? 'application/yaml';
  }
  const res = await fetch(`${url}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed };
}

export interface Delivery {
  event: string;
  payload: unknown;
  id?: string;
  /** json (default) or form (`payload=`). */
  as?: 'json' | 'form';
  secret?: string | null;
  signature?: string;
  headers?: Record<string, string | null>;
  rawBody?: string | Buffer;
}

/** Sends one signed GitHub delivery the way GitHub does. */
export async function deliver(url: string, d: Delivery): Promise<Answer & { id: string }> {
  const id = d.id ?? randomUUID();
  const json = JSON.stringify(d.payload);
  const body = d.rawBody ?? (d.as === 'form' ? `payload=${encodeURIComponent(json)}` : json);
  const headers: Record<string, string> = {
    'content-type': d.as === 'form' ? 'application/x-www-form-urlencoded' : 'application/json',
    'user-agent': 'GitHub-Hookshot/test',
    'x-github-event': d.event,
    'x-github-delivery': id,
    'x-github-hook-id': '1',
  };
  const secret = d.secret === undefined ? SECRET : d.secret;
  if (secret !== null) headers['x-hub-signature-256'] = d.signature ?? sign(body, secret);
  for (const [k, v] of Object.entries(d.headers ?? {})) {
    if (v === null) delete headers[k];
    else headers[k] = v;
  }
  const res = await fetch(`${url}/webhooks/github`, { method: 'POST', headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { id, status: res.status, body: parsed };
}

/** A push payload like GitHub's (fields slipway reads, plus some it does not). */
export function pushPayload(o: {
  repo: string;
  ref: string;
  sha?: string;
  before?: string;
  deleted?: boolean;
  created?: boolean;
  message?: string;
  files?: { added?: string[]; modified?: string[]; removed?: string[] };
  pusher?: string;
}): Record<string, unknown> {
  const sha = o.deleted ? '0'.repeat(40) : (o.sha ?? randomSha());
  const commit = {
    id: sha,
    tree_id: randomSha(),
    message: o.message ?? 'a change',
    timestamp: new Date().toISOString(),
    author: { name: 'Dev', email: 'dev@example.com' },
    added: o.files?.added ?? [],
    removed: o.files?.removed ?? [],
    modified: o.files?.modified ?? ['README.md'],
  };
  return {
    ref: o.ref,
    before: o.before ?? randomSha(),
    after: sha,
    created: o.created ?? false,
    deleted: o.deleted ?? false,
    forced: false,
    base_ref: null,
    compare: 'https://github.com/x/y/compare',
    commits: o.deleted ? [] : [commit],
    head_commit: o.deleted ? null : commit,
    repository: {
      id: 1,
      name: o.repo.split('/')[1],
      full_name: o.repo,
      owner: { login: o.repo.split('/')[0], name: o.repo.split('/')[0] },
      clone_url: `https://github.com/${o.repo}.git`,
      default_branch: 'main',
      master_branch: 'main',
    },
    pusher: { name: o.pusher ?? 'octocat', email: 'octocat@example.com' },
    sender: { login: o.pusher ?? 'octocat' },
  };
}

export function randomSha(): string {
  return Array.from({ length: 40 }, () => '0123456789abcdef'[Math.floor(Math.random() * 16)]).join('');
}

/** Polls until `fn` answers something truthy (no time limit of its own: vitest's timeout applies). */
export async function eventually<T>(fn: () => Promise<T | undefined | null | false>, everyMs = 100): Promise<T> {
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
