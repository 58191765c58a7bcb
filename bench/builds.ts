/**
 * npm run bench:builds — how fast slipway starts and runs builds, against plain Docker in the same run.
 *
 * - push_to_start_p50_ms / _p95_ms: signed webhook answered 202 → the build's first log line (its
 *   timestamp in the Redis log stream), `shared` isolation, free worker slots, through serve + lanes +
 *   worker. (The same figures for `dedicated` go to stderr.)
 * - shared_build_ratio: slipway's build phase of a small app on the host engine (context packing and the
 *   BuildKit build through slipway's log pipeline, from its `build` step to the built image) ÷ a plain
 *   BuildKit build (Engine API `version=2`, what `docker build` does with BuildKit; buildx is not
 *   installed here) of the same context on the same engine. Medians, no cache. The source fetch is
 *   not in the ratio (docker build has none); its median goes to stderr.
 * - dedicated_build_ratio: the same build phase on a fresh dedicated engine, plus the part of that
 *   engine's start not hidden by the source fetch that runs beside it (max(0, engine − fetch)), cold
 *   (no cache), ÷ the same baseline. To stderr: the same ratio with the engine start counted in
 *   full, the cached ratio (`cache: true`, the repository's data root warmed once), and the
 *   `docker` CLI's classic build times for reference.
 * - engine_start_ms: median time from spawning a dedicated dockerd to its answering the Engine API.
 * - reuse_ms: a release tag pushed on an already-built commit: webhook 202 → build succeeded (manifest re-tagged).
 * Output: one JSON document on stdout.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { DockerBuildRunner, logKey } from '../src/builders/index.js';
import { loadConfig } from '../src/config.js';
import { startServe, startWorker } from '../src/main.js';
import type { BuildRecord } from '../src/store/index.js';
import { BASE, REGISTRY, buildRecord, deleteRegistryRepo, gitHttpServer, makeRepo } from '../dev/builders.js';
import { startRedis } from '../dev/redis.js';
import { LOCAL_SOURCES } from '../dev/sources.js';
import { ADMIN, SECRET, api, deliver, pushPayload } from '../dev/webhooks.js';

const PUSHES = Number(process.env.BENCH_PUSHES ?? 12);
const BUILDS = Number(process.env.BENCH_BUILDS ?? 5);
const run = Date.now().toString(36);
const IMAGE = `${REGISTRY}/slipway-bench/builds-${run}`;
const docker = new Docker();
const note = (msg: string) => process.stderr.write(`${msg}\n`);

const median = (xs: number[]) => percentile(xs, 50);
function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
const round = (x: number, d = 0) => Math.round(x * 10 ** d) / 10 ** d;

const APP = {
  Dockerfile: [
    `FROM ${BASE}`,
    'COPY . /app',
    'RUN cd /app && ls -la > /files.txt',
    'RUN mkdir -p /data && cp -r /app /data/ && echo done',
    'CMD ["cat", "/files.txt"]',
    '',
  ].join('\n'),
  'index.html': '<h1>bench</h1>\n',
  ...Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`src/file${i}.txt`, `${'x'.repeat(2000)}\n`])),
};

async function main() {
  const redisServer = await startRedis();
  const redis = new Redis(redisServer.url);
  const dataDir = await mkdtemp(path.join(tmpdir(), 'slipway-bench-'));
  const repo = await makeRepo(APP);
  const gitServer = await gitHttpServer(path.dirname(repo.dir));
  const cloneUrl = `${gitServer.url}/${path.basename(repo.dir)}`;
  const localImages: string[] = [];
  try {
    // ---- build ratios: the runner alone vs plain BuildKit on the same engine ----
    const baseline: number[] = [];
    const classic: number[] = [];
    const shared: number[] = [];
    const dedicatedCold: number[] = [];
    const dedicatedCached: number[] = [];
    const engineStart: number[] = [];
    const fetchMs: number[] = [];
    const dedicatedColdFull: number[] = [];
    let n = 0;
    const slipwayBuild = async (isolation: 'shared' | 'dedicated', cache: boolean, sha: string): Promise<{ ms: number; fullMs: number }> => {
      const stamps: { at: number; text: string }[] = [];
      const record = buildRecord({ repo: `bench/app-${isolation}`, sha, image: IMAGE, tags: [`b${n++}`], cloneUrl, cache });
      const log = {
        line: (text: string) => stamps.push({ at: performance.now(), text }),
        step: (text: string) => stamps.push({ at: performance.now(), text: `==> ${text}` }),
      };
      const r = new DockerBuildRunner({ redis, docker, dataDir, defaults: { isolation } });
      await r.run(record, { signal: new AbortController().signal, log });
      const built = stamps.find((s) => s.text.startsWith('built sha256:'))!;
      const buildStep = stamps.find((s) => s.text.startsWith('==> build '))!;
      const ready = stamps.find((s) => /engine ready in (\d+) ms/.test(s.text));
      const engineMs = ready ? Number(/engine ready in (\d+) ms/.exec(ready.text)![1]) : 0;
      if (ready) engineStart.push(engineMs);
      const fetched = stamps.find((s) => /checked out \w+ in (\d+) ms/.test(s.text));
      const fetchedMs = fetched ? Number(/in (\d+) ms/.exec(fetched.text)![1]) : 0;
      if (fetched) fetchMs.push(fetchedMs);
      // The build phase (context + BuildKit build), plus the part of the engine's start that the
      // source fetch running beside it does not hide.
      return { ms: built.at - buildStep.at + Math.max(0, engineMs - fetchedMs), fullMs: built.at - buildStep.at + engineMs };
    };
    const plainBuild = async (): Promise<number> => {
      const tag = `slipway-bench/baseline:${run}-${n++}`;
      localImages.push(tag);
      const t0 = performance.now();
      const stream = await docker.buildImage({ context: repo.dir, src: Object.keys(APP) }, { version: '2', t: tag, nocache: true });
      await new Promise<void>((ok, fail) => docker.modem.followProgress(stream, (err: Error | null) => (err ? fail(err) : ok())));
      return performance.now() - t0;
    };
    const classicBuild = async (): Promise<number> => {
      const tag = `slipway-bench/classic:${run}-${n++}`;
      localImages.push(tag);
      const t0 = performance.now();
      await promisify(execFile)('docker', ['build', '-q', '--no-cache', '-t', tag, repo.dir], { env: { ...process.env, DOCKER_BUILDKIT: '0' } });
      return performance.now() - t0;
    };
    // Warm-up: the base image on the host engine, tsx caches, the registry's blobs.
    await plainBuild();
    await slipwayBuild('shared', false, repo.sha);
    for (let i = 0; i < BUILDS; i++) {
      // A new commit each round, so reuse never short-cuts a build.
      const { sha } = await makeRepo({ 'round.txt': `${i}\n` }, repo.dir);
      baseline.push(await plainBuild());
      shared.push((await slipwayBuild('shared', false, sha)).ms);
      const cold = await slipwayBuild('dedicated', false, sha);
      dedicatedCold.push(cold.ms);
      dedicatedColdFull.push(cold.fullMs);
      classic.push(await classicBuild());
    }
    // Cached dedicated builds: the repository's cache root is warmed once, then reused.
    await slipwayBuild('dedicated', true, repo.sha);
    for (let i = 0; i < BUILDS; i++) {
      const { sha } = await makeRepo({ 'cached-round.txt': `${i}\n` }, repo.dir);
      dedicatedCached.push((await slipwayBuild('dedicated', true, sha)).ms);
    }
    note(`baseline BuildKit build ms: ${baseline.map((x) => round(x)).join(' ')}`);
    note(`slipway shared build ms: ${shared.map((x) => round(x)).join(' ')}`);
    note(`slipway dedicated cold build ms: ${dedicatedCold.map((x) => round(x)).join(' ')}`);
    note(`slipway dedicated cached build ms: ${dedicatedCached.map((x) => round(x)).join(' ')}`);
    note(`docker CLI classic build ms (reference): ${classic.map((x) => round(x)).join(' ')}`);
    note(`source fetch ms (not in the ratios; docker build has none): median ${median(fetchMs)}`);
    note(`dedicated_cached_build_ratio: ${round(median(dedicatedCached) / median(baseline), 2)}`);
    note(`shared build vs CLI classic: ${round(median(shared) / median(classic), 2)}`);

    // ---- push to start and reuse, through serve + lanes + worker ----
    const pushToStart: Record<'shared' | 'dedicated', number[]> = { shared: [], dedicated: [] };
    const reuse: number[] = [];
    const config = loadConfig({
      SLIPWAY_REDIS_URL: redisServer.url,
      SLIPWAY_PORT: '0',
      SLIPWAY_WEBHOOK_SECRET: SECRET,
      SLIPWAY_ADMIN_TOKEN: ADMIN,
      SLIPWAY_LOG_LEVEL: 'silent',
      SLIPWAY_DATA_DIR: dataDir,
      // The push-to-start figures compare both isolations through repository configs.
      SLIPWAY_ALLOW_SHARED_BUILDS: 'true',
      SLIPWAY_SOURCE_ALLOW: LOCAL_SOURCES,
    });
    const serve = await startServe(config);
    const worker = await startWorker(config);
    const reader = new Redis(redisServer.url);
    try {
      for (const isolation of ['shared', 'dedicated'] as const) {
        const repoName = `bench/p2s-${isolation}-${run}`;
        const doc = `repository: ${repoName}\nimage: ${IMAGE}\nbuilder: { isolation: ${isolation} }\nrules:\n  - { name: edge, source: branch, match: main, tags: ["${isolation}-{sha:7}"] }\n  - { name: rel, source: tag, semver: ">=1.0.0", tags: ["${isolation}-{version}"] }\n`;
        if ((await api(serve.url, 'PUT', `/api/repos/${repoName}`, { text: doc })).status !== 200) throw new Error('config refused');
        let lastSha = repo.sha;
        for (let i = 0; i < PUSHES; i++) {
          const { sha } = await makeRepo({ 'push.txt': `${isolation} ${i}\n` }, repo.dir);
          lastSha = sha;
          const payload = pushPayload({ repo: repoName, ref: 'refs/heads/main', sha });
          (payload.repository as Record<string, unknown>).clone_url = cloneUrl;
          const res = await deliver(serve.url, { event: 'push', payload });
          const answered = Date.now();
          const id = (res.body as { builds: string[] }).builds[0]!;
          const first = (await reader.xread('COUNT', 1, 'BLOCK', 60_000, 'STREAMS', logKey(id), '0-0')) as [string, [string, string[]][]][];
          const fields = first[0]![1][0]![1];
          const at = Number(fields[fields.indexOf('t') + 1]);
          pushToStart[isolation].push(at - answered);
          await waitEnded(serve.url, id);
        }
        if (isolation === 'shared') {
          // Release tags on the last built commit: each is a reuse (registry-side re-tag).
          for (let i = 0; i < 5; i++) {
            const payload = pushPayload({ repo: repoName, ref: `refs/tags/v1.0.${i}`, sha: lastSha });
            (payload.repository as Record<string, unknown>).clone_url = cloneUrl;
            const res = await deliver(serve.url, { event: 'push', payload });
            const answered = Date.now();
            const record = await waitEnded(serve.url, (res.body as { builds: string[] }).builds[0]!);
            if (record.status !== 'succeeded') throw new Error(`reuse build ${record.status}: ${record.error}`);
            reuse.push(Date.parse(record.finishedAt!) - answered);
          }
        }
      }
    } finally {
      reader.disconnect();
      await worker.close();
      await serve.close();
    }
    note(`reuse ms: ${reuse.join(' ')}; load average: ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
    note(`push_to_start dedicated p50/p95 ms: ${median(pushToStart.dedicated)} / ${percentile(pushToStart.dedicated, 95)}`);

    process.stdout.write(
      `${JSON.stringify(
        {
          push_to_start_p50_ms: median(pushToStart.shared),
          push_to_start_p95_ms: percentile(pushToStart.shared, 95),
          shared_build_ratio: round(median(shared) / median(baseline), 2),
          dedicated_build_ratio: round(median(dedicatedCold) / median(baseline), 2),
          engine_start_ms: median(engineStart),
          reuse_ms: median(reuse),
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    for (const tag of localImages) await docker.getImage(tag).remove().catch(() => undefined);
    await gitServer.close();
    await deleteRegistryRepo(IMAGE);
    redis.disconnect();
    await redisServer.stop();
    await rm(dataDir, { recursive: true, force: true });
    await rm(repo.dir, { recursive: true, force: true });
  }
}

async function waitEnded(url: string, id: string): Promise<BuildRecord> {
  for (;;) {
    const r = (await api(url, 'GET', `/api/builds/${id}`)).body as BuildRecord;
    if (['succeeded', 'failed', 'cancelled', 'superseded'].includes(r.status)) return r;
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

await main();
