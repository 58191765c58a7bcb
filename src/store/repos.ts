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
  constructor(private readonly redis: Redis) {}

  async get(repo: string): Promise<StoredRepo | null> {
    const raw = await this.redis.hget(keys.repos, repo.toLowerCase());
    return raw ? (JSON.parse(raw) as StoredRepo) : null;
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
