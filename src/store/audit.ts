import type { Redis } from 'ioredis';
import { AuditEntry } from './records.js';
import { keys } from './keys.js';

/** Who did what, when: an append-only Redis stream (capped at about 100,000 entries). */
export class AuditStore {
  constructor(private readonly redis: Redis) {}

  async append(entry: AuditEntry): Promise<void> {
    const valid = AuditEntry.parse(entry);
    await this.redis.xadd(keys.audit, 'MAXLEN', '~', '100000', '*', 'entry', JSON.stringify(valid));
  }

  /** Newest first. */
  async list(limit: number): Promise<AuditEntry[]> {
    const rows = await this.redis.xrevrange(keys.audit, '+', '-', 'COUNT', limit);
    return rows.map(([, fields]) => JSON.parse(fields[1] ?? 'null') as AuditEntry);
  }
}
