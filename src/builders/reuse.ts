import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { keyPrefixes, type BuildRecord } from '../store/index.js';

/**
 * The inputs that decide an image: equal inputs give an equal image, so an earlier succeeded
 * build's manifest can take the new tags instead of a rebuild.
 */
export function inputKey(build: Pick<BuildRecord, 'repo' | 'image' | 'sha' | 'context' | 'dockerfile' | 'build_args' | 'cache' | 'target'>): string {
  const args = Object.entries(build.build_args).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const inputs: unknown[] = [build.repo, build.image, build.sha, build.context, build.dockerfile, args, build.cache];
  // Appended only when set, so the keys of builds without a target stay what they were.
  if (build.target !== undefined) inputs.push(build.target);
  const canonical = JSON.stringify(inputs);
  return createHash('sha256').update(canonical).digest('hex');
}

export interface ReuseEntry {
  digest: string;
  buildId: string;
}

/** Input hash → digest of the build that produced it, in Redis (shared by every worker). */
export class ReuseIndex {
  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds = 90 * 24 * 3600,
  ) {}

  private key(hash: string) {
    return `${keyPrefixes.builders}reuse:${hash}`;
  }

  async get(hash: string): Promise<ReuseEntry | undefined> {
    const raw = await this.redis.get(this.key(hash));
    return raw ? (JSON.parse(raw) as ReuseEntry) : undefined;
  }

  async set(hash: string, entry: ReuseEntry): Promise<void> {
    await this.redis.set(this.key(hash), JSON.stringify(entry), 'EX', this.ttlSeconds);
  }

  async forget(hash: string): Promise<void> {
    await this.redis.del(this.key(hash));
  }
}
