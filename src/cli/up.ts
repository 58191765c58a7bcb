import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer as createNetServer } from 'node:net';
import { join, resolve } from 'node:path';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { connectRedis, createLogger, StartupError, startServe, startWorker, type ServeHandle } from '../main.js';
import type { BuildRunner } from '../queue/index.js';
import { TokenStore } from '../store/index.js';

/**
 * `slipway up`: everything on one machine. It bootstraps what `serve` and `worker` are given
 * elsewhere (a private redis-server when SLIPWAY_REDIS_URL is unset, a webhook secret and an admin
 * token kept under the data dir), then runs both in this process.
 */

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createNetServer();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? ok(a.port) : fail(new Error('no free port'))));
    });
  });
}

/** A private redis-server for `slipway up`, with its data (AOF) under the data dir. */
async function startPrivateRedis(dataDir: string, log: Logger): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = join(dataDir, 'redis');
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec', '--maxmemory-policy', 'noeviction', '--loglevel', 'warning', '--logfile', join(dir, 'redis.log')];
  let child: ChildProcess;
  try {
    child = spawn('redis-server', args, { stdio: 'ignore' });
  } catch (err) {
    throw new StartupError(`cannot start redis-server (${(err as Error).message}): install Redis ≥ 7 or set SLIPWAY_REDIS_URL`);
  }
  const spawned = new Promise<void>((ok, fail) => {
    child.once('spawn', ok);
    child.once('error', (err) => fail(new StartupError(`cannot start redis-server (${err.message}): install Redis ≥ 7 or set SLIPWAY_REDIS_URL`)));
  });
  await spawned;
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      if ((await probe.ping()) === 'PONG') break;
    } catch {
      if (i > 200 || child.exitCode !== null) throw new StartupError(`redis-server did not start; see ${join(dir, 'redis.log')}`);
    } finally {
      probe.disconnect();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  log.info({ url, dir }, 'slipway up: private redis-server started');
  return {
    url,
    stop: async () => {
      if (child.exitCode !== null) return;
      const gone = new Promise((ok) => child.once('exit', ok));
      child.kill('SIGTERM'); // redis flushes its AOF on SIGTERM
      await gone;
    },
  };
}

async function readOrCreate(file: string, create: () => string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const value = create();
    await writeFile(file, `${value}\n`, { mode: 0o600 });
    return value;
  }
}

export interface UpHandle extends ServeHandle {
  webhookSecret: string;
  adminToken: string;
}

/** `slipway up`: everything on one machine (API + workers in one process). */
export async function startUp(config: Config, o: { log?: Logger; runner?: BuildRunner } = {}): Promise<UpHandle> {
  const log = o.log ?? createLogger(config);
  const dataDir = resolve(config.dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const privateRedis = config.redisUrl ? undefined : await startPrivateRedis(dataDir, log);
  try {
    const redisUrl = config.redisUrl ?? privateRedis!.url;
    const webhookSecret = config.webhookSecret ?? (await readOrCreate(join(dataDir, 'webhook-secret'), () => randomBytes(24).toString('hex')));
    const redis = await connectRedis(redisUrl, log);
    let adminToken = config.adminToken;
    try {
      if (!adminToken) {
        const tokens = new TokenStore(redis);
        const saved = await readFile(join(dataDir, 'admin-token'), 'utf8').then((t) => t.trim(), () => undefined);
        if (saved && (await tokens.lookup(saved))?.role === 'admin') adminToken = saved;
        else {
          const created = await tokens.create(`up-admin-${Date.now().toString(36)}`, { role: 'admin', repos: ['*'], expiresAt: null }, 'slipway', new Date());
          adminToken = created.token;
          await writeFile(join(dataDir, 'admin-token'), `${adminToken}\n`, { mode: 0o600 });
        }
      }
    } finally {
      redis.disconnect();
    }
    const full: Config = { ...config, redisUrl, webhookSecret };
    const serve = await startServe(full, { log });
    const worker = await startWorker(full, { log, ...(o.runner ? { runner: o.runner } : {}) });
    return {
      ...serve,
      webhookSecret,
      adminToken: adminToken!,
      close: async () => {
        await Promise.all([serve.close(), worker.close()]);
        await privateRedis?.stop();
      },
    };
  } catch (err) {
    await privateRedis?.stop();
    throw err;
  }
}
