import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeploymentStore, DeployWorker, SwarmTarget } from '../src/deploy/index.js';
import { environmentSpecs, validateConfig, type EnvironmentSpec } from '../src/rules/index.js';
import type { DeploymentRecord } from '../src/store/records.js';
import { startRedis, type TestRedis } from '../dev/redis.js';

const doc = (environments: unknown) => ({ repository: 'acme/web', image: 'localhost:5000/acme/web', environments });
const spec = (env: unknown, name = 'staging'): EnvironmentSpec => environmentSpecs(validateConfig(doc({ [name]: env })))[name]!;

describe('frozen rollout plan', () => {
  let redis: TestRedis;
  let client: Redis;
  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.url, { maxRetriesPerRequest: null });
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
  });

  const record = (store: DeploymentStore): DeploymentRecord => ({
    id: store.newId(),
    repo: 'acme/web',
    environment: 'production',
    revision: 1,
    digest: `sha256:${'a'.repeat(64)}`,
    image: 'localhost:5000/acme/web',
    build: null,
    trigger: 'manual',
    by: 'alice',
    status: 'pending',
    startedAt: null,
    finishedAt: null,
    error: null,
  });

  it('keeps the config as it was at request time identical through storage', async () => {
    const store = new DeploymentStore(client);
    const config = environmentSpecs(
      validateConfig(
        doc({
          staging: { service: 'y' },
          production: { service: 'x', replicas: 3, ports: ['18080:8080'], health: { cmd: ['CMD-SHELL', 'true'], start_period: '3s' }, update: { parallelism: 0, delay: '250ms' }, promote_from: 'staging', protected: true },
        }),
      ),
    ).production!;
    const r = record(store);
    await store.enqueue(r, { config });
    expect(await store.plan(r.id)).toEqual({ config });
  });

  it('refuses a stored plan that is not a typed environment', async () => {
    const store = new DeploymentStore(client);
    const r = record(store);
    await client.set(`slipway:deploy:plan:${r.id}`, JSON.stringify({ config: { service: 'x', ports: ['18080:8080'] } }));
    await expect(store.plan(r.id)).rejects.toThrow();
  });

  it('ends a queued rollout whose plan is unreadable as failed, so the environment is not blocked', async () => {
    const store = new DeploymentStore(client);
    const r = record(store);
    await store.enqueue(r, { config: spec({ service: 'slipway-units-never-applied' }, 'production') });
    await client.set(`slipway:deploy:plan:${r.id}`, JSON.stringify({ config: { service: 'x' } }));
    const worker = new DeployWorker({ store, target: new SwarmTarget({ docker: new Docker({ socketPath: '/var/run/docker.sock' }) }), pollMs: 20 });
    worker.start();
    try {
      await expect.poll(async () => (await store.get(r.id))?.status, { timeout: 10_000 }).toBe('failed');
    } finally {
      await worker.stop();
    }
    expect((await store.get(r.id))?.error).toMatch(/^the rollout plan is unreadable: /);
    expect(await store.activeIds()).not.toContain(r.id);
    expect(await store.queuedEnvironments()).toEqual([]);
  });
});
