import type { Redis } from 'ioredis';
import type { BuildLog } from '../queue/index.js';
import { buildKeys } from '../store/index.js';

export const logKey = (buildId: string) => buildKeys.log(buildId);

/** One entry of a build's log stream. `kind` end closes the log; `cut` marks where output was dropped. */
export interface LogEntry {
  id: string; // stream id
  at: number; // ms since epoch
  kind: 'line' | 'step' | 'cut' | 'end';
  text: string;
}

export interface BuildLogOptions {
  /** Lines kept per build; output beyond this is dropped behind one `cut` marker (default 10,000). */
  maxLines?: number;
  /** Longer lines are cut (default 8 KiB). */
  maxLineLength?: number;
  /** How long the log is kept after the build ends (default 30 days). */
  ttlSeconds?: number;
  clock?: () => number;
}

/** A BuildLog over a Redis stream, batched; `end()` writes the closing marker that followers wait for. */
export interface BuildLogWriter extends BuildLog {
  flush(): Promise<void>;
  end(status: string, error?: string | null): Promise<void>;
}

export function openBuildLog(redis: Redis, buildId: string, opts: BuildLogOptions = {}): BuildLogWriter {
  const key = logKey(buildId);
  const maxLines = opts.maxLines ?? 10_000;
  const maxLen = opts.maxLineLength ?? 8192;
  const clock = opts.clock ?? Date.now;
  let pending: [LogEntry['kind'], string, number][] = [];
  let written = 0;
  let dropped = 0;
  let cut = false;
  let timer: NodeJS.Timeout | undefined;
  let chain: Promise<void> = Promise.resolve();
  let ended = false;

  const write = () => {
    timer = undefined;
    const batch = pending;
    pending = [];
    if (batch.length === 0) return chain;
    const multi = redis.multi();
    for (const [kind, text, at] of batch) multi.xadd(key, '*', 'k', kind, 't', String(at), 'm', text);
    chain = chain.then(
      () => multi.exec().then(() => undefined),
      () => undefined,
    );
    return chain;
  };
  const push = (kind: LogEntry['kind'], text: string) => {
    if (ended) return;
    if (kind === 'line' || kind === 'step') {
      if (written >= maxLines) {
        dropped++;
        if (!cut) {
          cut = true;
          pending.push(['cut', `log cut here: the build wrote more than ${maxLines} lines; the rest is not kept`, clock()]);
        }
        return;
      }
      written++;
    }
    const t = text.length > maxLen ? `${text.slice(0, maxLen)}… [line cut at ${maxLen} characters]` : text;
    pending.push([kind, t, clock()]);
    if (pending.length >= 200) void write();
    else timer ??= setTimeout(() => void write(), 25);
  };

  return {
    line: (text) => push('line', text),
    step: (name) => push('step', name),
    flush: async () => {
      if (timer) clearTimeout(timer);
      await write();
    },
    end: async (status, error) => {
      if (ended) return;
      if (timer) clearTimeout(timer);
      const tail = dropped > 0 ? ` (${dropped} lines not kept)` : '';
      pending.push(['end', `${status}${error ? `: ${error}` : ''}${tail}`, clock()]);
      ended = true;
      await write();
      await redis.expire(key, opts.ttlSeconds ?? 30 * 24 * 3600);
    },
  };
}

/** An entry as XRANGE/XREAD answer it. */
export function toEntry([id, fields]: [string, string[]]): LogEntry {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  return { id, at: Number(f.t), kind: (f.k ?? 'line') as LogEntry['kind'], text: f.m ?? '' };
}

/** The entries after `afterId` (exclusive; `0` for all). */
export async function readLog(redis: Redis, buildId: string, afterId = '0', count = 5000): Promise<LogEntry[]> {
  const rows = await redis.xrange(logKey(buildId), afterId === '0' ? '-' : `(${afterId}`, '+', 'COUNT', count);
  return rows.map(toEntry);
}

/** Renders an entry as a line of text: steps as `==> name` with their offset from the first entry. */
export function formatEntry(e: LogEntry, startedAt: number): string {
  const offset = `${((e.at - startedAt) / 1000).toFixed(1)}s`;
  switch (e.kind) {
    case 'step':
      return `==> [${offset}] ${e.text}`;
    case 'cut':
      return `==> [${offset}] ---- ${e.text} ----`;
    case 'end':
      return `==> [${offset}] build ${e.text}`;
    default:
      return e.text;
  }
}
