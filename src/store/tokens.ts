import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { keys } from './keys.js';
import { LuaScript } from './script.js';

export const Role = z.enum(['viewer', 'developer', 'deployer', 'admin']);
export type Role = z.infer<typeof Role>;
const RANK: Record<Role, number> = { viewer: 0, developer: 1, deployer: 2, admin: 3 };

/** viewer < developer < deployer < admin */
export function roleAtLeast(have: Role, need: Role): boolean {
  return RANK[have] >= RANK[need];
}

export interface TokenInfo {
  name: string;
  role: Role;
  /** Repository globs it may act on (`acme/*`); `['*']`: every repository. */
  repos: string[];
  createdAt: string;
  createdBy: string;
  /** ISO-8601; null: it does not expire. */
  expiresAt: string | null;
}

/** What a token was created with, besides its name. */
export interface TokenGrant {
  role: Role;
  repos: string[];
  expiresAt: Date | null;
}

export class TokenNameTaken extends Error {
  readonly code = 'token_name_taken';
  constructor(readonly tokenName: string) {
    super(`a token named "${tokenName}" already exists; pick another name`);
  }
}

const CREATE = LuaScript.fromFile(new URL('./lua/token-create.lua', import.meta.url));

const REVOKE = LuaScript.fromFile(new URL('./lua/token-revoke.lua', import.meta.url));

/** A stored record; tokens made before scopes and expiry act on every repository and never expire. */
function parseInfo(raw: string): TokenInfo {
  const info = JSON.parse(raw) as Partial<TokenInfo> & Pick<TokenInfo, 'name' | 'role' | 'createdAt' | 'createdBy'>;
  return { ...info, repos: info.repos ?? ['*'], expiresAt: info.expiresAt ?? null };
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** API tokens: random, shown once, stored only as their sha256. */
export class TokenStore {
  constructor(private readonly redis: Redis) {}

  async create(name: string, grant: TokenGrant, by: string, at: Date): Promise<{ token: string; info: TokenInfo }> {
    const token = `slw_${randomBytes(32).toString('base64url')}`;
    const hash = hashToken(token);
    const info: TokenInfo = {
      name,
      role: grant.role,
      repos: grant.repos,
      createdAt: at.toISOString(),
      createdBy: by,
      expiresAt: grant.expiresAt?.toISOString() ?? null,
    };
    // The name claim and the token land together or not at all.
    const claimed = await CREATE.run(this.redis, [keys.tokenNames, keys.tokens], [name, hash, JSON.stringify(info)]);
    if (claimed !== 1) throw new TokenNameTaken(name);
    return { token, info };
  }

  async lookup(token: string): Promise<TokenInfo | null> {
    const raw = await this.redis.hget(keys.tokens, hashToken(token));
    return raw ? parseInfo(raw) : null;
  }

  /** Every token's record (never a secret), by name. */
  async list(): Promise<TokenInfo[]> {
    const all = (await this.redis.hvals(keys.tokens)).map(parseInfo);
    return all.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Removes a token at once: its next request is refused. Answers its record, or null when there is none. */
  async revoke(name: string): Promise<TokenInfo | null> {
    const raw = (await REVOKE.run(this.redis, [keys.tokenNames, keys.tokens], [name])) as string | null;
    return raw ? parseInfo(raw) : null;
  }
}
