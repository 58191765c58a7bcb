import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
export { newBuild } from '../../dev/builders.js';
import { NonRetryableBuildError, RetryableBuildError, type BuildRunner } from '../../src/queue/index.js';

/** What the recording runner saw: one entry per start and end of a run, in Redis so separate processes share it. */
export interface RunEvent {
  id: string;
  pid: number;
  tag: string;
  event: 'start' | 'end' | 'aborted' | 'failed';
  at: number;
}

export const RUNS_KEY = 'test:runs';

/**
 * A BuildRunner that records what ran and when (in Redis list `test:runs`) and takes its behaviour
 * from the record's build_args: SLEEP_MS (default 50), FAIL=nonretryable|retryable|plain.
 * It honours the AbortSignal by rejecting with the signal's reason.
 */
export function recordingRunner(redis: Redis, tag = 'main'): BuildRunner {
  const note = (e: Omit<RunEvent, 'pid' | 'tag' | 'at'>) =>
    redis.rpush(RUNS_KEY, JSON.stringify({ ...e, pid: process.pid, tag, at: Date.now() }));
  return {
    async run(build, { signal, log }) {
      await note({ id: build.id, event: 'start' });
      log.line(`building ${build.id}`);
      const ms = Number(build.build_args.SLEEP_MS ?? '50');
      try {
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(resolve, ms);
          signal.addEventListener('abort', () => {
            clearTimeout(t);
            reject(signal.reason);
          }, { once: true });
        });
      } catch (err) {
        await note({ id: build.id, event: 'aborted' });
        throw err;
      }
      const fail = build.build_args.FAIL;
      if (fail) {
        await note({ id: build.id, event: 'failed' });
        if (fail === 'retryable') throw new RetryableBuildError('registry unreachable\nsecond line');
        if (fail === 'nonretryable') throw new NonRetryableBuildError('step 3/5 RUN make: exit code 2\nmore output');
        throw new Error('plain failure');
      }
      await note({ id: build.id, event: 'end' });
      return { digest: `sha256:${createHash('sha256').update(build.id).digest('hex')}` };
    },
  };
}

export async function runEvents(redis: Redis): Promise<RunEvent[]> {
  return (await redis.lrange(RUNS_KEY, 0, -1)).map((s) => JSON.parse(s) as RunEvent);
}


/** Polls `check` until it answers a value (not undefined/false) or `ms` pass. */
export async function waitFor<T>(check: () => Promise<T | undefined | false> | T | undefined | false, ms: number, what: string): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
