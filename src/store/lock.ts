import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LuaScript } from './script.js';

const RELEASE = LuaScript.fromFile(new URL('./lua/lock-release.lua', import.meta.url));
const RENEW = LuaScript.fromFile(new URL('./lua/lock-renew.lua', import.meta.url));

/**
 * A Redis lock with a holder token and a time to live (SET NX PX), the one lock helper: a holder
 * that dies loses it when it expires, and only the holder renews or releases it.
 */
export class RedisLock {
  constructor(
    private readonly redis: Redis,
    readonly key: string,
    readonly owner: string = randomBytes(8).toString('hex'),
  ) {}

  async tryTake(ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.key, this.owner, 'PX', ttlMs, 'NX')) === 'OK';
  }

  /** Waits for the lock, polling every `everyMs`; throws after `timeoutMs` or when `signal` aborts. */
  async take(ttlMs: number, o: { everyMs?: number; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> {
    const until = Date.now() + (o.timeoutMs ?? Number.POSITIVE_INFINITY);
    while (!(await this.tryTake(ttlMs))) {
      o.signal?.throwIfAborted();
      if (Date.now() > until) throw new Error(`could not take the lock ${this.key} within ${o.timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, o.everyMs ?? 50));
    }
  }

  async renew(ttlMs: number): Promise<boolean> {
    return (await RENEW.run(this.redis, [this.key], [this.owner, ttlMs])) === 1;
  }

  async release(): Promise<void> {
    await RELEASE.run(this.redis, [this.key], [this.owner]);
  }

  /** Runs `fn` holding the lock. */
  async with<T>(ttlMs: number, fn: () => Promise<T>, o: Parameters<RedisLock['take']>[1] = {}): Promise<T> {
    await this.take(ttlMs, o);
    try {
      return await fn();
    } finally {
      await this.release();
    }
  }
}
