import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { keys } from './keys.js';

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

/** Repositories and their configs, one Redis hash keyed by owner/name. */
export class RepoStore {
  /** The last document read per repository, so an unchanged config is not parsed per delivery. */
  private readonly parsed = new Map<string, { raw: string; repo: StoredRepo }>();

  constructor(private readonly redis: Redis) {}

  /** The stored repository; treat the answer as read-only (it may be shared between callers). */
  async get(repo: string): Promise<StoredRepo | null> {
    const key = repo.toLowerCase();
    const raw = await this.redis.hget(keys.repos, key);
    if (!raw) return null;
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
    const isNew = await this.redis.hset(keys.repos, repo.toLowerCase(), JSON.stringify(stored));
    return { stored, created: isNew === 1 };
  }

  async delete(repo: string): Promise<boolean> {
    return (await this.redis.hdel(keys.repos, repo.toLowerCase())) === 1;
  }
}
