import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import { WORK_QUEUE } from './keys.js';
import type { LaneScripts, Picked } from './scripts.js';

/** The payload of a work-queue job: versioned, keyed by build id, never carries secrets. */
export const WorkJob = z.object({ v: z.literal(1), buildId: z.string().min(1) });
export type WorkJob = z.infer<typeof WorkJob>;

/** Failed work-queue jobs (a build lost too often) stay visible this long, for diagnosis. */
const FAILED_JOB_AGE_S = 7 * 24 * 3600;

/** The one BullMQ work queue, on the caller's connection (no extra connection per queue or repo). */
export function openWorkQueue(redis: Redis, log: Logger): Queue<WorkJob> {
  // bullmq's connection type names its own ioredis; ours is the same API, a newer major.
  const queue = new Queue<WorkJob>(WORK_QUEUE.name, { connection: redis as never, prefix: WORK_QUEUE.prefix });
  // Connection errors surface here while Redis is away; the connection reconnects by itself.
  queue.on('error', (err) => log.debug({ err }, 'work queue connection error'));
  return queue;
}

export function jobOptions(jobId: string) {
  return { jobId, removeOnComplete: true, removeOnFail: { age: FAILED_JOB_AGE_S } };
}

/**
 * Moves builds from the lanes into the work queue: the dispatch script picks them (fairly, within
 * free slots), then they are added to BullMQ. Calls made while a pass runs coalesce into one more
 * pass. A failure here loses nothing: picked builds keep their slot in `active`, and a worker's
 * reconciler adds any job that never reached BullMQ.
 */
export class Dispatcher {
  private current: Promise<void> | null = null;
  private again = false;

  constructor(
    private readonly o: { scripts: LaneScripts; queue: Queue<WorkJob>; clock: () => number; log: Logger },
  ) {}

  kick(): Promise<void> {
    if (this.current) {
      this.again = true;
      return this.current;
    }
    this.current = (async () => {
      try {
        do {
          this.again = false;
          await this.pass();
        } while (this.again);
      } catch (err) {
        this.o.log.warn({ err }, 'dispatch failed; the reconciler retries');
      } finally {
        this.current = null;
      }
    })();
    return this.current;
  }

  /** Adds the jobs of builds a lane script picked. Never throws: a job that fails to land is re-added by a reconciler. */
  async enqueue(picked: Picked): Promise<void> {
    if (picked.length === 0) return;
    try {
      await this.add(picked);
    } catch (err) {
      this.o.log.warn({ err, builds: picked.map((p) => p.id) }, 'adding dispatched builds to the work queue failed; the reconciler retries');
    }
  }

  private async pass(): Promise<void> {
    await this.add(await this.o.scripts.dispatch(this.o.clock()));
  }

  private async add(picked: Picked): Promise<void> {
    if (picked.length === 0) return;
    await this.o.queue.addBulk(
      picked.map((p) => ({ name: 'build', data: { v: 1 as const, buildId: p.id }, opts: jobOptions(p.job) })),
    );
  }
}
