import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config.js';
import { startServe, startWorker, type Running, type ServeHandle } from '../../src/main.js';
import type { BuildRunner } from '../../src/queue/index.js';
import { startRedis, type TestRedis } from '../../dev/redis.js';
import { LOCAL_SOURCES } from '../../dev/sources.js';

export interface Slipway {
  redis: TestRedis;
  serve: ServeHandle;
  worker: Running;
  dataDir: string;
  /** Stops the worker, the API and Redis, and removes the data dir. */
  stop(): Promise<void>;
}

/**
 * slipway as its processes wire it (startServe + startWorker) on a Redis of its own and a fresh
 * data dir: the whole path a webhook takes. `env` adds or overrides settings; `runner` replaces
 * the real builder where a suite is about something else.
 */
export async function startSlipway(o: { secret: string; adminToken: string; env?: Record<string, string>; runner?: BuildRunner; name?: string }): Promise<Slipway> {
  const redis = await startRedis();
  const dataDir = await mkdtemp(path.join(tmpdir(), `slipway-${o.name ?? 'test'}-`));
  const config = loadConfig({
    SLIPWAY_REDIS_URL: redis.url,
    SLIPWAY_PORT: '0',
    SLIPWAY_WEBHOOK_SECRET: o.secret,
    SLIPWAY_ADMIN_TOKEN: o.adminToken,
    SLIPWAY_LOG_LEVEL: 'silent',
    SLIPWAY_DATA_DIR: dataDir,
    SLIPWAY_SOURCE_ALLOW: LOCAL_SOURCES,
    ...o.env,
  });
  const serve = await startServe(config);
  const worker = await startWorker(config, o.runner ? { runner: o.runner } : {});
  return {
    redis,
    serve,
    worker,
    dataDir,
    async stop() {
      await worker.close();
      await serve.close();
      await redis.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
