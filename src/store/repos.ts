import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { keys } from './keys.js';
import { LuaScript } from './script.js';

/** A repository's stored config document (normalised by src/rules) and who stored it when. */
export interface StoredRepo {
  repo: string;
  /** The normalised config document, exactly as PUT answered it. */
  config: Record<string, unknown>;
  /** sha256 of the stored document: compiled forms are cached per process under it. */
  version: string;
  updatedAt: string;
  updatedBy: string;
}

export function configVersion(config: unknown): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex');
}

/**
 * A precondition of a write made with a config read earlier: the repository's version is still
 * `value` (HGET key field). Lua scripts that take one refuse the write when it no longer holds.
 */
export interface VersionGuard {
  key: string;
  field: string;
  value: string;
}

// Gives every stored repository its version entry (data stored before the versions hash existed).
const INDEX_VERSIONS = new LuaScript(`
local flat = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #flat, 2 do
  n = n + redis.call('HSETNX', KEYS[2], flat[i], cjson.decode(flat[i + 1]).version)
end
return n`);

/**
 * Repositories and their configs, one Redis hash keyed by owner/name, plus a hash of their
 * versions, written in the same transaction, so a hot path can use a config it read before and
 * let its write check (with `guard`) that the config did not change meanwhile.
 */
export class RepoStore {
  /** The last document read per repository, so an unchanged config is not parsed per delivery. */
  private readonly parsed = new Map<string, { raw: string; repo: StoredRepo }>();

  constructor(private readonly redis: Redis) {}

  /** The stored repository; treat the answer as read-only (it may be shared between callers). */
  async get(repo: string): Promise<StoredRepo | null> {
    const key = repo.toLowerCase();
    const raw = await this.redis.hget(keys.repos, key);
    if (!raw) {
      this.parsed.delete(key);
      return null;
    }
    return this.remember(key, raw);
  }

  /**
   * The repository as this process last read or stored it, without asking Redis; read from Redis
   * when this process has not seen it. It may be out of date: writes made with it carry `guard`.
   */
  async recent(repo: string): Promise<StoredRepo | null> {
    return this.parsed.get(repo.toLowerCase())?.repo ?? this.get(repo);
  }

  /** The precondition "the config is still the one `stored` holds". */
  guard(stored: StoredRepo): VersionGuard {
    return { key: keys.repoVersions, field: stored.repo.toLowerCase(), value: stored.version };
  }

  /** Indexes the versions of repositories stored before there was a versions hash (start-up); answers how many. */
  async indexVersions(): Promise<number> {
    return Number(await INDEX_VERSIONS.run(this.redis, [keys.repos, keys.repoVersions], []));
  }

  private remember(key: string, raw: string): StoredRepo {
    const hit = this.parsed.get(key);
    if (hit && hit.raw === raw) return hit.repo;
    const stored = JSON.parse(raw) as StoredRepo;
    if (this.parsed.size >= 1000) this.parsed.clear();
    this.parsed.set(key, { raw, repo: stored });
    return stored;
  }

  async list(): Promise<StoredRepo[]> {
    const all = await this.redis.hvals(keys.repos);
    return all.map((raw) => JSON.parse(raw) as StoredRepo).sort((a, b) => a.repo.localeCompare(b.repo));
  }

  /** Stores (or replaces) the config; answers whether the repository existed before. */
  async put(repo: string, config: Record<string, unknown>, by: string, at: Date): Promise<{ stored: StoredRepo; created: boolean }> {
    const stored: StoredRepo = { repo, config, version: configVersion(config), updatedAt: at.toISOString(), updatedBy: by };
    const key = repo.toLowerCase();
    const raw = JSON.stringify(stored);
    const [isNew] = await this.exec(this.redis.multi().hset(keys.repos, key, raw).hset(keys.repoVersions, key, stored.version));
    this.remember(key, raw);
    return { stored, created: isNew === 1 };
  }

  async delete(repo: string): Promise<boolean> {
    const key = repo.toLowerCase();
    const [existed] = await this.exec(this.redis.multi().hdel(keys.repos, key).hdel(keys.repoVersions, key));
    this.parsed.delete(key);
    return existed === 1;
  }

  private async exec(tx: ReturnType<Redis['multi']>): Promise<unknown[]> {
    const replies = (await tx.exec()) ?? [];
    return replies.map(([err, value]) => {
      if (err) throw err;
      return value;
    });
  }
}
