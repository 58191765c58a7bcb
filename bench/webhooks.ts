/**
 * `npm run bench:webhooks`: webhook intake throughput against a bare node:http baseline, same run.
 *
 * autocannon (this process), 50 connections, 10 s each, the same signed push payload of a
 * registered repository, a fresh X-GitHub-Delivery per request, against
 *   (a) a bare node:http server answering 202 (the baseline), and
 *   (b) slipway's `POST /webhooks/github` (`slipway serve`), Redis with AOF `appendfsync everysec`.
 * The baseline is measured before and after slipway and averaged (other load on the machine drifts).
 * Each server runs in its own child process, so the load generator never shares its thread.
 * Then every delivery answered 202 is checked in Redis: its decision and its build record exist.
 * Prints {baseline_rps, slipway_rps, ratio, p50_ms, p99_ms, ...}. Goal: ratio ≥ 0.30, p99 ≤ 60 ms.
 * Also, to tell where the time goes: the CPU per request of each server and of the load generator
 * (`cpu_ratio` = what the ratio would be if the servers' CPU were the only limit), how busy Redis
 * was (100 = one core) and its time per delivery by command (evalsha = the submit script, whole).
 *
 * Every server first gets BENCH_WARMUP seconds (default 3) of the same load, not measured.
 * Env: BENCH_DURATION (s, default 10), BENCH_CONNECTIONS (default 50), BENCH_CPU_PROF (dir: CPU profile of slipway's server).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';

const SECRET = 'bench-secret';
const ADMIN = 'bench-admin';
const REPO = 'bench/app';
const self = fileURLToPath(import.meta.url);

function payload(): string {
  const sha = 'c0ffee'.padEnd(40, '0');
  const commit = { id: sha, message: 'Speed things up', timestamp: '2026-01-01T00:00:00Z', author: { name: 'Dev', email: 'dev@example.com' }, added: [], removed: [], modified: ['src/app.ts', 'README.md'] };
  return JSON.stringify({
    ref: 'refs/heads/main',
    before: 'b'.repeat(40),
    after: sha,
    created: false,
    deleted: false,
    forced: false,
    base_ref: null,
    commits: [commit],
    head_commit: commit,
    repository: { id: 1, name: 'app', full_name: REPO, owner: { login: 'bench' }, clone_url: 'https://github.com/bench/app.git', default_branch: 'main' },
    pusher: { name: 'octocat', email: 'octocat@example.com' },
    sender: { login: 'octocat' },
  });
}

/** Child process: one of the two servers; prints `READY <url>` when listening. */
async function child(kind: string): Promise<void> {
  if (kind === 'baseline') {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end('{"accepted":true}');
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      process.stdout.write(`READY http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}\n`);
    });
    return;
  }
  const { loadConfig } = await import('../src/config.js');
  const { startServe } = await import('../src/main.js');
  const config = loadConfig({
    SLIPWAY_REDIS_URL: process.argv[4],
    SLIPWAY_PORT: '0',
    SLIPWAY_WEBHOOK_SECRET: SECRET,
    SLIPWAY_ADMIN_TOKEN: ADMIN,
    SLIPWAY_LOG_LEVEL: 'warn',
  });
  const serve = await startServe(config);
  process.stdout.write(`READY ${serve.url}\n`);
  process.on('SIGTERM', () => void serve.close().then(() => process.exit(0)));
}

function startChild(kind: string, redisUrl = ''): Promise<{ proc: ChildProcess; url: string }> {
  const prof = process.env.BENCH_CPU_PROF && kind !== 'baseline' ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const proc = spawn(process.execPath, [...prof, '--import', 'tsx', self, 'child', kind, redisUrl], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\S+)/.exec(out);
      if (m) resolve({ proc, url: m[1]! });
    });
    proc.once('exit', (code) => reject(new Error(`${kind} server exited (${code}) before it was ready`)));
  });
}

async function stopChild(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  const gone = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  await gone;
}

/** CPU time (user + system, µs) a child process has used so far, from /proc. */
function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / 100) * 1e6; // utime, stime in clock ticks (100/s)
}

interface Load {
  /** Server CPU per answered request (µs): robust against other load on the machine. */
  cpuPerRequest: number;
  /** The load generator's (this process's) CPU per answered request (µs). */
  loadgenCpuPerRequest: number;
  rps: number;
  p50: number;
  p99: number;
  statuses: Record<string, number>;
  accepted: string[];
  errors: number;
}

async function load(url: string, pid: number, body: string, seconds: number, connections: number): Promise<Load> {
  const cpuStart = cpuMicros(pid);
  const ownStart = process.cpuUsage();
  const signature = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
  const base = { 'content-type': 'application/json', 'x-github-event': 'push', 'x-hub-signature-256': signature, 'user-agent': 'GitHub-Hookshot/bench' };
  const accepted: string[] = [];
  const statuses: Record<string, number> = {};
  const result = await autocannon({
    url: `${url}/webhooks/github`,
    connections,
    duration: seconds,
    method: 'POST',
    body,
    requests: [
      {
        method: 'POST',
        // One request in flight per connection (no pipelining): the connection's context holds the
        // delivery id of the request being answered, so the load generator does the same work for
        // both servers (no parsing of slipway's answers).
        setupRequest: (req, context: { deliveryId?: string }) => {
          context.deliveryId = randomUUID();
          return { ...req, headers: { ...base, 'x-github-delivery': context.deliveryId } };
        },
        onResponse: (status, _body, context: { deliveryId?: string }) => {
          statuses[status] = (statuses[status] ?? 0) + 1;
          if (status === 202 && context.deliveryId) accepted.push(context.deliveryId);
        },
      },
    ],
  });
  const answered = Object.values(statuses).reduce((a, n) => a + n, 0);
  const own = process.cpuUsage(ownStart);
  return {
    cpuPerRequest: Math.round((cpuMicros(pid) - cpuStart) / Math.max(1, answered)),
    loadgenCpuPerRequest: Math.round((own.user + own.system) / Math.max(1, answered)), rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, statuses, accepted, errors: result.errors + result.timeouts };
}

async function main(): Promise<void> {
  const seconds = Number(process.env.BENCH_DURATION ?? 10);
  const warmup = Number(process.env.BENCH_WARMUP ?? 3);
  const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
  const body = payload();
  // Each server first gets `warmup` seconds of the same load, not measured (JIT, connection pools).
  const measured = async (url: string, pid: number, beforeMeasuring?: () => Promise<void>) => {
    if (warmup > 0) await load(url, pid, body, warmup, connections);
    await beforeMeasuring?.();
    return load(url, pid, body, seconds, connections);
  };
  const { startRedis } = await import('../test/support/redis.js');
  const redis = await startRedis({ appendfsync: 'everysec' });
  try {
    // The baseline runs before and after slipway; its mean is the baseline (the machine's load drifts).
    const baseline = await startChild('baseline');
    const before = await measured(baseline.url, baseline.proc.pid!).finally(() => stopChild(baseline.proc));

    const slipway = await startChild('slipway', redis.url);
    try {
      const put = await fetch(`${slipway.url}/api/repos/${REPO}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ repository: REPO, image: 'localhost:5000/bench/app', rules: [{ name: 'edge', source: 'branch', match: 'main', tags: ['edge', '{sourceref}-{sha:7}'] }] }),
      });
      if (put.status !== 200) throw new Error(`registering ${REPO} failed: ${put.status} ${await put.text()}`);
      const probe = new Redis(redis.url);
      const cpu = async () => {
        const info = await probe.info('cpu');
        return Number(/used_cpu_sys:([\d.]+)/.exec(info)![1]) + Number(/used_cpu_user:([\d.]+)/.exec(info)![1]);
      };
      let cpuBefore = 0;
      const b = await measured(slipway.url, slipway.proc.pid!, async () => {
        await probe.config('RESETSTAT');
        cpuBefore = await cpu();
      });
      // Redis time per delivery by command (µs): where a delivery's Redis CPU goes.
      const redisUsPerDelivery: Record<string, number> = {};
      let submitCalls = 0;
      for (const m of (await probe.info('commandstats')).matchAll(/cmdstat_(\S+?):calls=(\d+),usec=(\d+)/g)) {
        const us = Number(m[3]) / Math.max(1, b.accepted.length);
        if (us >= 1) redisUsPerDelivery[m[1]!] = Math.round(us);
        if (m[1] === 'evalsha') submitCalls = Number(m[2]);
      }
      // How busy Redis was (100 = one core): tells whether Redis or the server was the limit.
      const redisCpuPct = Math.round(((await cpu()) - cpuBefore) / seconds * 100);
      probe.disconnect();
      const again = await startChild('baseline');
      const after = await measured(again.url, again.proc.pid!).finally(() => stopChild(again.proc));
      const a = { rps: (before.rps + after.rps) / 2, p99: Math.max(before.p99, after.p99), cpuPerRequest: Math.round((before.cpuPerRequest + after.cpuPerRequest) / 2) };

      // Every delivery answered 202 has its decision and its build record in Redis.
      const r = new Redis(redis.url);
      let missing = 0;
      let durable = 0;
      for (let i = 0; i < b.accepted.length; i += 1000) {
        const chunk = b.accepted.slice(i, i + 1000);
        const decisions = await r.mget(chunk.map((id) => `slipway:delivery:${id}`));
        const ids: string[] = [];
        for (const d of decisions) {
          const built = d ? ((JSON.parse(d) as { builds?: string[] }).builds ?? []) : [];
          if (built.length === 1) ids.push(built[0]!);
          else missing++;
        }
        const pipe = r.pipeline();
        for (const id of ids) pipe.exists(`slipway:build:${id}`);
        for (const [, n] of (await pipe.exec()) ?? []) {
          if (n === 1) durable++;
          else missing++;
        }
      }
      r.disconnect();
      process.stdout.write(
        `${JSON.stringify({
          baseline_rps: Math.round(a.rps),
          slipway_rps: Math.round(b.rps),
          ratio: Number((b.rps / a.rps).toFixed(3)),
          p50_ms: b.p50,
          p99_ms: b.p99,
          baseline_p99_ms: a.p99,
          baseline_runs_rps: [Math.round(before.rps), Math.round(after.rps)],
          redis_cpu_pct: redisCpuPct,
          redis_us_per_delivery: redisUsPerDelivery,
          // the group commit at work: deliveries per submit-script call (one event-loop turn's worth)
          deliveries_per_submit: Number((b.accepted.length / Math.max(1, submitCalls)).toFixed(1)),
          // Server CPU per request, and their ratio: what the throughput ratio would be on an otherwise idle machine.
          baseline_cpu_us_per_req: a.cpuPerRequest,
          slipway_cpu_us_per_req: b.cpuPerRequest,
          loadgen_cpu_us_per_req: { baseline: before.loadgenCpuPerRequest, slipway: b.loadgenCpuPerRequest },
          cpu_ratio: Number((a.cpuPerRequest / b.cpuPerRequest).toFixed(3)),
          accepted: b.accepted.length,
          durable,
          missing,
          statuses: b.statuses,
          errors: b.errors,
          goal: { ratio: 0.3, p99_ms: 60 },
          met: b.rps / a.rps >= 0.3 && b.p99 <= 60 && missing === 0 && durable === b.accepted.length,
        })}\n`,
      );
    } finally {
      await stopChild(slipway.proc);
    }
  } finally {
    await redis.stop();
  }
}

if (process.argv[2] === 'child') await child(process.argv[3]!);
else await main();
