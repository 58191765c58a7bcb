/**
 * A lane worker in its own process, for crash tests: `node --import tsx test/support/lane-worker-process.ts`
 * with env REDIS_URL, TAG, SLOTS, LOCK_MS, STALLED_MS, MAX_LOST, RECONCILE_MS. Prints `ready` on stdout once
 * started; SIGTERM closes it gracefully (GRACE_MS) and it exits 0.
 */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { LaneWorker } from '../../src/queue/index.js';
import { recordingRunner } from './lanes.js';

const env = (k: string, d: string) => process.env[k] ?? d;
const redis = new Redis(env('REDIS_URL', 'redis://127.0.0.1:6379'), { maxRetriesPerRequest: null });
const tag = env('TAG', 'child');
const log = pino({ level: env('LOG_LEVEL', 'warn') }, pino.destination(2));
const worker = new LaneWorker({
  redis,
  runner: recordingRunner(redis, tag),
  slots: Number(env('SLOTS', '1')),
  log,
  id: tag,
  lockMs: Number(env('LOCK_MS', '2000')),
  stalledMs: Number(env('STALLED_MS', '1000')),
  maxLost: Number(env('MAX_LOST', '2')),
  reconcileMs: Number(env('RECONCILE_MS', '1000')),
  onChange: (r) => void redis.rpush('test:changes', JSON.stringify({ id: r.id, status: r.status, tag })),
});
await worker.start();
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void worker.close(Number(env('GRACE_MS', '20000'))).then(() => {
    redis.disconnect();
    process.exit(0);
  });
});
