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

const INDEX_VERSIONS = LuaScript.fromFile(new URL('./lua/repo-index-versions.lua', import.meta.url));

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

const PUT = LuaScript.fromFile(new URL('./lua/repo-put.lua', import.meta.url));

const DELETE = LuaScript.fromFile(new URL('./lua/repo-delete.lua', import.meta.url));

const INDEX_CLAIMS = LuaScript.fromFile(new URL('./lua/repo-index-claims.lua', import.meta.url));

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
