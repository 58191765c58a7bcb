import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RepoConfig } from '../rules/index.js';
import { keys } from './keys.js';
import { LuaScript } from './script.js';

/** A repository's stored config document (normalised by src/rules) and who stored it when. */
export interface StoredRepo {
  repo: string;
  /** The normalised config document, exactly as PUT answered it (src/rules validated it before it was stored). */
  config: RepoConfig;
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
 * What a config holds that no other repository may: `field` names it (`service:web`,
 * `port:8080/tcp`), `holder` says who holds it in words (`acme/web (environment staging)`).
 */
export interface Claim {
  field: string;
  holder: string;
}

/** A write refused because other repositories hold some of its claims; nothing was stored. */
export class ClaimsTaken extends Error {
  readonly code = 'claims_taken';
  constructor(readonly taken: { field: string; holder: string }[]) {
    super(`held by other repositories: ${taken.map((t) => `${t.field} (${t.holder})`).join(', ')}`);
  }
}

// Stores a config with its claims, unless another repository holds one of them; the claims it held
// before and no longer makes are released. KEYS: repos, versions, claims hash, this repo's claim set.
// ARGV: repo key, stored JSON, version, then per claim its field and holder text. Answers
// {1, created 0|1}, or {0, field, holder text, …} with nothing written.
const PUT = new LuaScript(`
local mine = ARGV[1] .. '\t'
local function held_by_other(h) return h and string.sub(h, 1, #mine) ~= mine end
local taken = { 0 }
for i = 4, #ARGV, 2 do
  local h = redis.call('HGET', KEYS[3], ARGV[i])
  if held_by_other(h) then
    taken[#taken + 1] = ARGV[i]
    taken[#taken + 1] = string.sub(h, string.find(h, '\t', 1, true) + 1)
  end
end
if #taken > 1 then return taken end
for _, f in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  if not held_by_other(redis.call('HGET', KEYS[3], f)) then redis.call('HDEL', KEYS[3], f) end
end
redis.call('DEL', KEYS[4])
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[3], ARGV[i], mine .. ARGV[i + 1])
  redis.call('SADD', KEYS[4], ARGV[i])
end
local created = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return { 1, created }`);

// Removes a repository, its version and the claims it holds. KEYS as PUT; ARGV: repo key. Answers 1 if it existed.
const DELETE = new LuaScript(`
local mine = ARGV[1] .. '\t'
for _, f in ipairs(redis.call('SMEMBERS', KEYS[4])) do
  local h = redis.call('HGET', KEYS[3], f)
  if h and string.sub(h, 1, #mine) == mine then redis.call('HDEL', KEYS[3], f) end
end
redis.call('DEL', KEYS[4])
redis.call('HDEL', KEYS[2], ARGV[1])
return redis.call('HDEL', KEYS[1], ARGV[1])`);

// Claims of repositories stored before the claims index existed (start-up): first come, first held.
// KEYS: claims hash, this repo's claim set. ARGV: repo key, then field/holder pairs. Answers how many it took.
const INDEX_CLAIMS = new LuaScript(`
local n = 0
for i = 2, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[1] .. '\t' .. ARGV[i + 1]) == 1 then
    redis.call('SADD', KEYS[2], ARGV[i])
    n = n + 1
  end
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

  /**
   * Stores (or replaces) the config with what it claims, in one step: throws ClaimsTaken (nothing
   * stored) when another repository holds one of the claims. Answers whether the repository is new.
   */
  async put(repo: string, config: RepoConfig, by: string, at: Date, claims: readonly Claim[] = []): Promise<{ stored: StoredRepo; created: boolean }> {
    const stored: StoredRepo = { repo, config, version: configVersion(config), updatedAt: at.toISOString(), updatedBy: by };
    const key = repo.toLowerCase();
    const raw = JSON.stringify(stored);
    const answer = (await PUT.run(this.redis, this.claimKeys(key), [key, raw, stored.version, ...claims.flatMap((c) => [c.field, c.holder])])) as [number, ...unknown[]];
    if (answer[0] === 0) {
      const flat = answer.slice(1) as string[];
      const taken: { field: string; holder: string }[] = [];
      for (let i = 0; i < flat.length; i += 2) taken.push({ field: flat[i]!, holder: flat[i + 1]! });
      throw new ClaimsTaken(taken);
    }
    this.remember(key, raw);
    return { stored, created: answer[1] === 1 };
  }

  async delete(repo: string): Promise<boolean> {
    const key = repo.toLowerCase();
    const existed = await DELETE.run(this.redis, this.claimKeys(key), [key]);
    this.parsed.delete(key);
    return existed === 1;
  }

  /** Indexes the claims of repositories stored before there was a claims index (start-up); answers how many were taken. */
  async indexClaims(claimsOf: (stored: StoredRepo) => Claim[]): Promise<number> {
    let n = 0;
    for (const stored of await this.list()) {
      const key = stored.repo.toLowerCase();
      const claims = claimsOf(stored);
      if (claims.length === 0) continue;
      n += Number(await INDEX_CLAIMS.run(this.redis, [keys.claims, keys.claimsOf(key)], [key, ...claims.flatMap((c) => [c.field, c.holder])]));
    }
    return n;
  }

  private claimKeys(key: string): string[] {
    return [keys.repos, keys.repoVersions, keys.claims, keys.claimsOf(key)];
  }
}
