import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { startServe } from '../../src/main.js';
import { startRedis, type TestRedis } from '../../dev/redis.js';
import { ADMIN, SECRET } from '../../dev/webhooks.js';

/** Redis with a password (as every infra/ file runs it): slipway reaches it only with SLIPWAY_REDIS_PASSWORD. */
let redis: TestRedis;
let dataDir: string;
const PASSWORD = 'a-redis-password';

beforeAll(async () => {
  redis = await startRedis({ password: PASSWORD });
  dataDir = await mkdtemp(path.join(tmpdir(), 'slipway-redis-auth-'));
});

afterAll(async () => {
  await redis?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('a Redis that requires a password', () => {
  const env = () => ({ SLIPWAY_REDIS_URL: redis.url, SLIPWAY_PORT: '0', SLIPWAY_WEBHOOK_SECRET: SECRET, SLIPWAY_ADMIN_TOKEN: ADMIN, SLIPWAY_LOG_LEVEL: 'silent', SLIPWAY_DATA_DIR: dataDir });

  it('refuses slipway without the password', async () => {
    await expect(startServe(loadConfig(env()))).rejects.toThrow(/if it needs a password, set SLIPWAY_REDIS_PASSWORD/);
  });

  it('serves with SLIPWAY_REDIS_PASSWORD kept apart from the URL', async () => {
    const serve = await startServe(loadConfig({ ...env(), SLIPWAY_REDIS_PASSWORD: PASSWORD }));
    try {
      const ready = await fetch(`${serve.url}/readyz`);
      expect(((await ready.json()) as { checks: { redis: string } }).checks.redis).toBe('ok');
    } finally {
      await serve.close();
    }
  });
});
