import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { keyPrefixes, LuaScript, RedisLock } from '../store/index.js';
import { z } from 'zod';
import type { EnvironmentSpec } from '../rules/index.js';
import { DeploymentRecord } from '../store/records.js';

/**
 * What a queued rollout needs to run, frozen when it was requested: a later config edit does not change it.
 * The config is the rules engine's typed form; the schema only guards the Redis boundary (the rules engine
 * validated it before it was frozen).
 */
export interface RolloutPlan {
  config: EnvironmentSpec;
}

const Ms = z.number().int().min(0);
const FrozenService = z.object({
  name: z.string(),
  service: z.string(),
  replicas: z.number().int().min(0),
  ports: z.array(z.object({ published: z.number().int(), target: z.number().int(), protocol: z.enum(['tcp', 'udp']) })),
  endpoint: z.enum(['proxy', 'mesh']),
  env: z.record(z.string(), z.string()),
  health: z
    .object({ cmd: z.array(z.string()).min(1), intervalMs: Ms.optional(), timeoutMs: Ms.optional(), retries: z.number().int().optional(), startPeriodMs: Ms.optional() })
    .optional(),
  update: z.object({
    parallelism: z.number().int().min(0),
    delayMs: Ms,
    order: z.enum(['start-first', 'stop-first']),
    failureAction: z.enum(['rollback', 'pause', 'continue']),
    monitorMs: Ms,
    maxFailureRatio: z.number(),
  }),
  promoteFrom: z.string().optional(),
  protected: z.boolean(),
  command: z.array(z.string()).min(1).optional(),
  network: z.string().optional(),
});
const FrozenEnvironment = FrozenService.extend({
  services: z
    .array(
      z.object({
        name: z.string(),
        role: z.enum(['web', 'worker', 'job']),
        source: z.union([z.object({ rule: z.string() }), z.object({ image: z.string(), digest: z.string() })]),
        dependsOn: z.array(z.string()),
        spec: FrozenService,
      }),
    )
    .min(1)
    .optional(),
});
const FrozenPlan: z.ZodType<RolloutPlan> = z.object({ config: FrozenEnvironment });

const TAKE_PENDING = LuaScript.fromFile(new URL('./lua/take-pending.lua', import.meta.url));
const REVERT_CURRENT = LuaScript.fromFile(new URL('./lua/revert-current.lua', import.meta.url));

/** How long what became of an auto-deploy is remembered. */
const AUTO_DEPLOY_TTL_S = 30 * 24 * 3600;

export interface EnvKey {
  repo: string;
  environment: string;
}

/**
 * Deployment records and the per-environment queue in Redis. Keys (under the prefix):
 * `deploy:record:<id>`, `deploy:plan:<id>`, `deploy:history:<repo>:<env>` (ids, newest first),
 * `deploy:revision:<repo>:<env>` (counter), `deploy:current:<repo>:<env>` (last succeeded id),
 * `deploy:pending:<repo>:<env>` (the one queued request), `deploy:queue` (environments with a pending
 * request), `deploy:active` (ids running), `deploy:lock:<repo>:<env>` (the worker rolling it out).
 */
export class DeploymentStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = keyPrefixes.root,
  ) {}

  private k(...parts: string[]): string {
    return this.prefix + parts.join(':');
  }

  envKey(e: EnvKey): string {
    return `${e.repo}:${e.environment}`;
  }

  newId(): string {
    return `dep_${Date.now().toString(36)}${randomBytes(5).toString('hex')}`;
  }

  /**
   * A lease on requesting a build's auto-deploy to one environment, so two reports of the same
   * success request it once. The request itself replaces the lease with its deployment id (in
   * `enqueue`, atomically), or `refusal` with why it was not made; a requester that died holding
   * the lease leaves nothing once it expires, and the pipeline's reconciler asks again.
   */
  async leaseAutoDeploy(buildId: string, environment: string, leaseMs: number): Promise<boolean> {
    return (await this.redis.set(this.autoKey(buildId, environment), 'lease', 'PX', leaseMs, 'NX')) === 'OK';
  }

  /** What became of a build's auto-deploy to an environment: its deployment id, `refused: …`, `lease` (being requested) or null (never requested). */
  async autoDeployOf(buildId: string, environment: string): Promise<string | null> {
    return this.redis.get(this.autoKey(buildId, environment));
  }

  /** Records that a build's auto-deploy to an environment was decided against, and why. */
  async refuseAutoDeploy(buildId: string, environment: string, why: string): Promise<void> {
    await this.redis.set(this.autoKey(buildId, environment), `refused: ${why}`, 'EX', AUTO_DEPLOY_TTL_S);
  }

  private autoKey(buildId: string, environment: string): string {
    return this.k('deploy', 'auto', buildId, environment);
  }

  async nextRevision(e: EnvKey): Promise<number> {
    return this.redis.incr(this.k('deploy', 'revision', this.envKey(e)));
  }

  async get(id: string): Promise<DeploymentRecord | null> {
    const raw = await this.redis.get(this.k('deploy', 'record', id));
    return raw ? DeploymentRecord.parse(JSON.parse(raw)) : null;
  }

  async plan(id: string): Promise<RolloutPlan | null> {
    const raw = await this.redis.get(this.k('deploy', 'plan', id));
    if (!raw) return null;
    return FrozenPlan.parse(JSON.parse(raw));
  }

  async save(record: DeploymentRecord): Promise<void> {
    await this.redis.set(this.k('deploy', 'record', record.id), JSON.stringify(DeploymentRecord.parse(record)));
  }

  /**
   * Stores a new pending request and makes it the environment's queued one. Returns the id of the
   * request it replaced, if one was still waiting (the worker takes requests out atomically).
   */
  async enqueue(record: DeploymentRecord, plan: RolloutPlan): Promise<string | null> {
    const env = this.envKey(record);
    const tx = this.redis.multi();
    // An auto-deploy's request and its mark are one step: it is requested exactly once.
    if (record.trigger === 'build' && record.build) tx.set(this.autoKey(record.build, record.environment), record.id, 'EX', AUTO_DEPLOY_TTL_S);
    const res = await tx
      .set(this.k('deploy', 'record', record.id), JSON.stringify(record))
      .set(this.k('deploy', 'plan', record.id), JSON.stringify(plan))
      .lpush(this.k('deploy', 'history', env), record.id)
      .getset(this.k('deploy', 'pending', env), record.id)
      .sadd(this.k('deploy', 'queue'), env)
      .exec();
    const replaced = res?.at(-2)?.[1];
    return typeof replaced === 'string' ? replaced : null;
  }

  /**
   * Takes the environment's queued request, if any, and makes it active in the same step (so it is never
   * invisible between queued and running); an empty queue entry is dropped.
   */
  async takePending(env: string): Promise<string | null> {
    const id = await TAKE_PENDING.run(this.redis, [this.k('deploy', 'pending', env), this.k('deploy', 'queue'), this.k('deploy', 'active')], [env]);
    return typeof id === 'string' ? id : null;
  }

  async pendingId(e: EnvKey): Promise<string | null> {
    return this.redis.get(this.k('deploy', 'pending', this.envKey(e)));
  }

  async queuedEnvironments(): Promise<string[]> {
    return this.redis.smembers(this.k('deploy', 'queue'));
  }

  async dropActive(id: string): Promise<void> {
    await this.redis.srem(this.k('deploy', 'active'), id);
  }

  async activeIds(): Promise<string[]> {
    return this.redis.smembers(this.k('deploy', 'active'));
  }

  /** Ends a rollout: saves the record, and when it succeeded makes it the environment's current revision. */
  async finish(record: DeploymentRecord): Promise<void> {
    const m = this.redis
      .multi()
      .set(this.k('deploy', 'record', record.id), JSON.stringify(DeploymentRecord.parse(record)))
      .srem(this.k('deploy', 'active'), record.id);
    if (record.status === 'succeeded') m.set(this.k('deploy', 'current', this.envKey(record)), record.id);
    await m.exec();
  }

  /** Undoes `finish()` making `record` current (Swarm rolled it back after it had converged). */
  async revertCurrent(record: DeploymentRecord, previousId: string | null): Promise<void> {
    const key = this.k('deploy', 'current', this.envKey(record));
    await REVERT_CURRENT.run(this.redis, [key], [record.id, previousId ?? '']);
  }

  /** The environment runs nothing now (it was removed); its history stays. */
  async forgetCurrent(e: EnvKey): Promise<void> {
    await this.redis.del(this.k('deploy', 'current', this.envKey(e)));
  }

  async current(e: EnvKey): Promise<DeploymentRecord | null> {
    const id = await this.redis.get(this.k('deploy', 'current', this.envKey(e)));
    return id ? this.get(id) : null;
  }

  async history(e: EnvKey, limit = 50): Promise<DeploymentRecord[]> {
    const ids = await this.redis.lrange(this.k('deploy', 'history', this.envKey(e)), 0, limit - 1);
    const records = await Promise.all(ids.map((id) => this.get(id)));
    return records.filter((r): r is DeploymentRecord => r !== null);
  }

  /** The lock of the worker rolling an environment out; the holder renews it while it works. */
  rolloutLock(env: string, owner: string): RedisLock {
    return new RedisLock(this.redis, this.k('deploy', 'lock', env), owner);
  }

  /** A short mutex around request decisions (promote's idempotency check and its enqueue happen as one). */
  async withRequestMutex<T>(env: string, fn: () => Promise<T>): Promise<T> {
    return new RedisLock(this.redis, this.k('deploy', 'mutex', env)).with(10_000, fn, { everyMs: 25, timeoutMs: 10_000 });
  }
}
