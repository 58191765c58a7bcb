import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { keys } from './keys.js';

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
  createdAt: string;
  createdBy: string;
}

export class TokenNameTaken extends Error {
  readonly code = 'token_name_taken';
  constructor(readonly tokenName: string) {
    super(`a token named "${tokenName}" already exists; pick another name`);
  }
}

const CREATE = `
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1`;

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** API tokens: random, shown once, stored only as their sha256. */
export class TokenStore {
  constructor(private readonly redis: Redis) {}

  async create(name: string, role: Role, by: string, at: Date): Promise<{ token: string; info: TokenInfo }> {
    const token = `slw_${randomBytes(32).toString('base64url')}`;
    const hash = hashToken(token);
    const info: TokenInfo = { name, role, createdAt: at.toISOString(), createdBy: by };
    // The name claim and the token land together or not at all.
    const claimed = await this.redis.eval(CREATE, 2, keys.tokenNames, keys.tokens, name, hash, JSON.stringify(info));
    if (claimed !== 1) throw new TokenNameTaken(name);
    return { token, info };
  }

  async lookup(token: string): Promise<TokenInfo | null> {
    const raw = await this.redis.hget(keys.tokens, hashToken(token));
    return raw ? (JSON.parse(raw) as TokenInfo) : null;
  }
}
