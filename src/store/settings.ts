import type { Redis } from 'ioredis';
import { z } from 'zod';
import { keys } from './keys.js';

/** What the operator decides for a repository, apart from the config document its team edits. */
export const RepoSettings = z.object({
  /** Its images must lie under this; null: the default `<registry>/<owner>/<name>`. */
  imagePrefix: z.string().nullable(),
  /** Its own webhook secret; null: the shared SLIPWAY_WEBHOOK_SECRET signs its deliveries. */
  webhookSecret: z.string().nullable(),
  updatedAt: z.string(),
  updatedBy: z.string(),
});
export type RepoSettings = z.infer<typeof RepoSettings>;

/**
 * Per-repository operator settings, one Redis hash keyed by owner/name (lowercased). The webhook
 * secret is read on every delivery, so it is cached per process for `cacheMs`: a change made by
 * this process takes effect at once, one made by another within `cacheMs`.
 */
export class RepoSettingsStore {
  private readonly secrets = new Map<string, { secret: string | null; until: number }>();

  constructor(
    private readonly redis: Redis,
    private readonly o: { clock: () => number; cacheMs?: number },
  ) {}

  async get(repo: string): Promise<RepoSettings | null> {
    const raw = await this.redis.hget(keys.repoSettings, repo.toLowerCase());
    return raw ? RepoSettings.parse(JSON.parse(raw)) : null;
  }

  async put(repo: string, settings: RepoSettings): Promise<void> {
    await this.redis.hset(keys.repoSettings, repo.toLowerCase(), JSON.stringify(RepoSettings.parse(settings)));
    this.secrets.delete(repo.toLowerCase());
  }

  async delete(repo: string): Promise<void> {
    await this.redis.hdel(keys.repoSettings, repo.toLowerCase());
    this.secrets.delete(repo.toLowerCase());
  }

  /** The repository's own webhook secret, or null when the shared one signs its deliveries. */
  async webhookSecret(repo: string): Promise<string | null> {
    const key = repo.toLowerCase();
    const now = this.o.clock();
    const hit = this.secrets.get(key);
    if (hit && hit.until > now) return hit.secret;
    const secret = (await this.get(key))?.webhookSecret ?? null;
    if (this.secrets.size >= 10_000) this.secrets.clear();
    this.secrets.set(key, { secret, until: now + (this.o.cacheMs ?? 2_000) });
    return secret;
  }
}
