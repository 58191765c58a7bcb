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
 * (`cpu_ratio` = what the ratio would be if the servers' CPU were the only limit), the whole
 * machine's busy CPU per request and the ratio it implies, the share of the cores left idle or
 * stolen by the hypervisor during each server's slices, how busy Redis was (100 = one core) and its
 * time per delivery by command (evalsha = the submit script, whole).
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

/** The machine's CPU time so far, all cores, in clock ticks (100/s), from /proc/stat: busy (user, nice, system, irq, softirq), idle (with iowait), stolen by the hypervisor. */
function machineTicks(): { busy: number; idle: number; steal: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { busy: f[0]! + f[1]! + f[2]! + f[5]! + f[6]!, idle: f[3]! + f[4]!, steal: f[7]! };
}

/** One server's share of the load: summed over its slices. */
class Tally {
  /** Server CPU (µs), the load generator's CPU (µs), the whole machine's (µs) and measured time (s), over all slices. */
  serverCpu = 0;
  loadgenCpu = 0;
  machineCpu = 0;
  idleTicks = 0;
  stealTicks = 0;
  seconds = 0;
  /** Milliseconds from sending each request to its full answer. */
  latencies: number[] = [];
  statuses: Record<string, number> = {};
  accepted: string[] = [];
  errors = 0;
  /** Requests per second of each slice, in the order run. */
  slices: number[] = [];

  get answered(): number {
    return Object.values(this.statuses).reduce((a, n) => a + n, 0);
  }
  get rps(): number {
    return this.answered / Math.max(1e-9, this.seconds);
  }
  perRequest(us: number): number {
    return Math.round(us / Math.max(1, this.answered));
  }
  percentile(p: number): number {
    const sorted = Float64Array.from(this.latencies).sort();
    return sorted.length === 0 ? 0 : Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!);
  }
}

/** `seconds` of load on one server, added to `tally` (when given). */
async function load(url: string, pid: number, body: string, seconds: number, connections: number, tally?: Tally): Promise<void> {
  const cpuStart = cpuMicros(pid);
  const ticks0 = machineTicks();
  const ownStart = process.cpuUsage();
  const signature = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
  const base = { 'content-type': 'application/json', 'x-github-event': 'push', 'x-hub-signature-256': signature, 'user-agent': 'GitHub-Hookshot/bench' };
  const t = tally ?? new Tally();
  const answeredBefore = t.answered;
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
        // delivery id and send time of the request being answered, so the load generator does the
        // same work for both servers (no parsing of slipway's answers).
        setupRequest: (req, context: { deliveryId?: string; sentAt?: number }) => {
          context.deliveryId = randomUUID();
          context.sentAt = performance.now();
          return { ...req, headers: { ...base, 'x-github-delivery': context.deliveryId } };
        },
        onResponse: (status, _body, context: { deliveryId?: string; sentAt?: number }) => {
          t.latencies.push(performance.now() - context.sentAt!);
          t.statuses[status] = (t.statuses[status] ?? 0) + 1;
          if (status === 202 && context.deliveryId) t.accepted.push(context.deliveryId);
        },
      },
    ],
  });
  const own = process.cpuUsage(ownStart);
  t.serverCpu += cpuMicros(pid) - cpuStart;
  t.loadgenCpu += own.user + own.system;
  const ticks1 = machineTicks();
  t.machineCpu += (ticks1.busy - ticks0.busy) * 1e4;
  t.idleTicks += ticks1.idle - ticks0.idle;
  t.stealTicks += ticks1.steal - ticks0.steal;
  t.seconds += result.duration;
  t.errors += result.errors + result.timeouts;
  t.slices.push(Math.round((t.answered - answeredBefore) / result.duration));
}

async function main(): Promise<void> {
  const seconds = Number(process.env.BENCH_DURATION ?? 10);
  const slices = Number(process.env.BENCH_SLICES ?? 5);
  const warmup = Number(process.env.BENCH_WARMUP ?? 3);
  const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
  const body = payload();
  const { startRedis } = await import('../dev/redis.js');
  const redis = await startRedis({ appendfsync: 'everysec' });
  const baseline = await startChild('baseline');
  const slipway = await startChild('slipway', redis.url).catch(async (err: unknown) => {
    await stopChild(baseline.proc);
    throw err;
  });
  try {
    const put = await fetch(`${slipway.url}/api/repos/${REPO}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ repository: REPO, image: 'localhost:5000/bench/app', rules: [{ name: 'edge', source: 'branch', match: 'main', tags: ['edge', '{sourceref}-{sha:7}'] }] }),
    });
    if (put.status !== 200) throw new Error(`registering ${REPO} failed: ${put.status} ${await put.text()}`);
    // Each server first gets `warmup` seconds of the same load, not measured (JIT, connection pools).
    if (warmup > 0) {
      await load(baseline.url, baseline.proc.pid!, body, warmup, connections);
      await load(slipway.url, slipway.proc.pid!, body, warmup, connections);
    }
    const probe = new Redis(redis.url);
    const cpu = async () => {
      const info = await probe.info('cpu');
      return Number(/used_cpu_sys:([\d.]+)/.exec(info)![1]) + Number(/used_cpu_user:([\d.]+)/.exec(info)![1]);
    };
    await probe.config('RESETSTAT');
    const cpuBefore = await cpu();
    // The two servers take turns in short slices (ABBA order), so both meet the same moments of a
    // machine whose speed drifts within seconds; each gets `seconds` in all.
    const a = new Tally();
    const b = new Tally();
    const slice = seconds / slices;
    for (let i = 0; i < slices; i++) {
      const runBaseline = () => load(baseline.url, baseline.proc.pid!, body, slice, connections, a);
      const runSlipway = () => load(slipway.url, slipway.proc.pid!, body, slice, connections, b);
      if (i % 2 === 0) {
        await runBaseline();
        await runSlipway();
      } else {
        await runSlipway();
        await runBaseline();
      }
    }
    // Redis time per delivery by command (µs): where a delivery's Redis CPU goes.
    const redisUsPerDelivery: Record<string, number> = {};
    let submitCalls = 0;
    for (const m of (await probe.info('commandstats')).matchAll(/cmdstat_(\S+?):calls=(\d+),usec=(\d+)/g)) {
      const us = Number(m[3]) / Math.max(1, b.accepted.length);
      if (us >= 1) redisUsPerDelivery[m[1]!] = Math.round(us);
      if (m[1] === 'evalsha') submitCalls = Number(m[2]);
    }
    // How busy Redis was while slipway was measured (100 = one core; it idles during the baseline's slices).
    const redisCpu = (await cpu()) - cpuBefore;
    probe.disconnect();

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
    const ratio = b.rps / a.rps;
    const p99 = b.percentile(99);
    process.stdout.write(
      `${JSON.stringify({
        baseline_rps: Math.round(a.rps),
        slipway_rps: Math.round(b.rps),
        ratio: Number(ratio.toFixed(3)),
        p50_ms: b.percentile(50),
        p99_ms: p99,
        baseline_p99_ms: a.percentile(99),
        // rps of each slice, in the order run: how much the machine drifted meanwhile
        slices_rps: { baseline: a.slices, slipway: b.slices },
        redis_cpu_pct: Math.round((redisCpu / b.seconds) * 100),
        redis_cpu_us_per_delivery: Math.round((redisCpu * 1e6) / Math.max(1, b.accepted.length)),
        redis_us_per_delivery: redisUsPerDelivery,
        // the group commit at work: deliveries per submit-script call
        deliveries_per_submit: Number((b.accepted.length / Math.max(1, submitCalls)).toFixed(1)),
        // Server CPU per request, and their ratio: what the throughput ratio would be on an otherwise idle machine.
        baseline_cpu_us_per_req: a.perRequest(a.serverCpu),
        slipway_cpu_us_per_req: b.perRequest(b.serverCpu),
        loadgen_cpu_us_per_req: { baseline: a.perRequest(a.loadgenCpu), slipway: b.perRequest(b.loadgenCpu) },
        cpu_ratio: Number((a.perRequest(a.serverCpu) / b.perRequest(b.serverCpu)).toFixed(3)),
        // All the machine's busy CPU per request (servers, Redis, load generator, kernel), and the ratio it implies.
        machine_cpu_us_per_req: { baseline: a.perRequest(a.machineCpu), slipway: b.perRequest(b.machineCpu) },
        machine_cpu_ratio: Number((a.perRequest(a.machineCpu) / b.perRequest(b.machineCpu)).toFixed(3)),
        // Share of the two cores idle and stolen (by the hypervisor) while each server was measured, in %.
        idle_pct: { baseline: Math.round(a.idleTicks / a.seconds / 2), slipway: Math.round(b.idleTicks / b.seconds / 2) },
        steal_pct: { baseline: Math.round(a.stealTicks / a.seconds / 2), slipway: Math.round(b.stealTicks / b.seconds / 2) },
        accepted: b.accepted.length,
        durable,
        missing,
        statuses: b.statuses,
        errors: b.errors,
        goal: { ratio: 0.3, p99_ms: 60 },
        met: ratio >= 0.3 && p99 <= 60 && missing === 0 && durable === b.accepted.length,
      })}\n`,
    );
  } finally {
    await Promise.all([stopChild(slipway.proc), stopChild(baseline.proc)]);
    await redis.stop();
  }
}

if (process.argv[2] === 'child') await child(process.argv[3]!);
else await main();
