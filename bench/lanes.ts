/**
 * npm run bench:lanes — how long a quiet repository waits while another floods the build pool.
 *
 * One repository pushes FLOOD builds (default 500; its concurrency is the whole pool, so it could
 * take every slot), then QUIET repositories (default 20) push one build each, one every half build
 * duration ("staggered"), and again all at once ("burst"). A pool of SLOTS (4) slots, builds of a
 * fixed BUILD_MS (50 ms). Each quiet build's wait (push → runner start) is reported in build
 * durations, for the lanes and, in the same run, for one shared FIFO BullMQ queue.
 * Output: one JSON document on stdout.
 */
import { loadavg } from 'node:os';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Lanes, LaneWorker, type BuildRunner } from '../src/queue/index.js';
import type { BuildRecord } from '../src/store/index.js';
import { startRedis } from '../dev/redis.js';

const FLOOD = Number(process.env.FLOOD ?? 500);
const QUIET = Number(process.env.QUIET ?? 20);
const SLOTS = Number(process.env.SLOTS ?? 4);
const BUILD_MS = Number(process.env.BUILD_MS ?? 50);
const log = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Arrival = 'staggered' | 'burst';
interface Stats {
  p50: number;
  p95: number;
  max: number;
}

const r2 = (x: number) => Math.round(x * 100) / 100;

function stats(waitsMs: number[]): Stats {
  const s = waitsMs.map((w) => w / BUILD_MS).sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
  return { p50: r2(q(0.5)), p95: r2(q(0.95)), max: r2(s.at(-1)!) };
}

/** Pushes the quiet repositories' builds; answers when each was pushed. */
async function pushQuiet(arrival: Arrival, push: (i: number) => Promise<void>): Promise<number[]> {
  const at: number[] = [];
  for (let i = 0; i < QUIET; i++) {
    at.push(Date.now());
    await push(i);
    if (arrival === 'staggered') await sleep(BUILD_MS / 2);
  }
  return at;
}

let seq = 0;
function build(repo: string): BuildRecord {
  seq += 1;
  return {
    id: `bench${seq}`, repo, ref: `refs/heads/b${seq}`, sha: '0'.repeat(40), rules: ['edge'], tags: ['edge'],
    image: `127.0.0.1:5000/${repo}`, status: 'queued', digest: null, error: null, queuedAt: new Date().toISOString(),
    startedAt: null, finishedAt: null, deployments: [], context: '.', dockerfile: 'Dockerfile', build_args: {},
    cache: false, deploy: [], cloneUrl: null, deliveryId: null, trigger: 'webhook', by: 'bench', supersededBy: null, warnings: [],
  };
}

async function lanesRun(url: string, arrival: Arrival) {
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  await redis.flushall();
  const started = new Map<string, number>();
  let floodDone = 0;
  const runner: BuildRunner = {
    async run(b, { signal }) {
      started.set(b.id, Date.now());
      await new Promise<void>((ok, fail) => {
        const t = setTimeout(ok, BUILD_MS);
        signal.addEventListener('abort', () => (clearTimeout(t), fail(signal.reason)), { once: true });
      });
      if (b.repo === 'bench/flood') floodDone += 1;
      return { digest: `sha256:${'0'.repeat(64)}` };
    },
  };
  const lanes = new Lanes({ redis, log });
  const worker = new LaneWorker({ redis, runner, slots: SLOTS, log });
  await worker.start();
  const t0 = Date.now();
  for (let i = 0; i < FLOOD; i++) await lanes.submit([build('bench/flood')], { concurrency: SLOTS });
  const quiet: string[] = [];
  const pushed = await pushQuiet(arrival, async (i) => {
    const b = build(`bench/quiet${i}`);
    quiet.push(b.id);
    await lanes.submit([b]);
  });
  while (floodDone < FLOOD || quiet.some((id) => !started.has(id))) await sleep(20);
  const drainMs = Date.now() - t0;
  await worker.close(5_000);
  await lanes.close();
  redis.disconnect();
  const waits = quiet.map((id, i) => started.get(id)! - pushed[i]!);
  return { quiet: stats(waits), each: waits.map((w) => r2(w / BUILD_MS)), flood_drain_ms: drainMs };
}

async function fifoRun(url: string, arrival: Arrival) {
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  await redis.flushall();
  const started = new Map<string, number>();
  let floodDone = 0;
  const queue = new Queue('fifo', { connection: redis as never });
  const worker = new Worker(
    'fifo',
    async (job) => {
      started.set(String(job.id), Date.now());
      await sleep(BUILD_MS);
      if (job.data.repo === 'bench/flood') floodDone += 1;
    },
    { connection: redis as never, concurrency: SLOTS },
  );
  await worker.waitUntilReady();
  const t0 = Date.now();
  const opts = { removeOnComplete: true };
  for (let i = 0; i < FLOOD; i++) await queue.add('build', { repo: 'bench/flood' }, opts);
  const quiet: string[] = [];
  const pushed = await pushQuiet(arrival, async (i) => {
    const job = await queue.add('build', { repo: `bench/quiet${i}` }, opts);
    quiet.push(String(job.id));
  });
  while (floodDone < FLOOD || quiet.some((id) => !started.has(id))) await sleep(20);
  const drainMs = Date.now() - t0;
  await worker.close();
  await queue.close();
  redis.disconnect();
  const waits = quiet.map((id, i) => started.get(id)! - pushed[i]!);
  return { quiet: stats(waits), each: waits.map((w) => r2(w / BUILD_MS)), flood_drain_ms: drainMs };
}

const srv = await startRedis({ appendfsync: 'everysec' });
try {
  const out: Record<string, unknown> = { flood: FLOOD, quiet_repos: QUIET, slots: SLOTS, build_ms: BUILD_MS, unit: 'build durations' };
  for (const arrival of ['staggered', 'burst'] as const) {
    const fifo = await fifoRun(srv.url, arrival);
    const lanes = await lanesRun(srv.url, arrival);
    out[arrival] = {
      arrival: arrival === 'staggered' ? `one quiet push every ${BUILD_MS / 2} ms` : `${QUIET} quiet pushes at once`,
      lanes_quiet_wait: lanes.quiet,
      fifo_quiet_wait: fifo.quiet,
      // each quiet repository's wait, in push order
      lanes_each: lanes.each,
      fifo_each: fifo.each,
      p95_ratio_fifo_over_lanes: Math.round((fifo.quiet.p95 / Math.max(lanes.quiet.p95, 0.01)) * 10) / 10,
      flood_drain_ms: { lanes: lanes.flood_drain_ms, fifo: fifo.flood_drain_ms, ratio: Math.round((lanes.flood_drain_ms / fifo.flood_drain_ms) * 100) / 100 },
      // With QUIET pushes at once, even a perfectly fair pool with zero overhead starts the k-th
      // quiet build only at the k-th slot to free up, about (k - 0.5) / SLOTS build durations later.
      ...(arrival === 'burst' ? { ideal_p95: r2((Math.ceil(0.95 * QUIET) - 0.5) / SLOTS) } : {}),
    };
  }
  const staggered = out.staggered as { lanes_quiet_wait: Stats };
  out.goal = { quiet_p95_le_2: staggered.lanes_quiet_wait.p95 <= 2 };
  // Other work on the machine slows every hand-off; the figures are only comparable at similar load.
  out.loadavg_1m = Math.round(loadavg()[0]! * 100) / 100;
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
} finally {
  await srv.stop();
}
