/**
 * npm run bench:apps — real applications built by slipway against a plain BuildKit build, in one run.
 *
 * For each fixture app (test/fixtures/apps: node-api, debian-tool) three builds in a row: cold (no
 * cache of this app anywhere), warm after a one-file source change, and (node-api) warm after a
 * dependency change (one package added to the lockfile).
 * - slipway: DockerBuildRunner as a worker runs it (`dedicated` isolation, `cache: true`, the default
 *   egress policy, the repository's engine kept for its next build, SLIPWAY_BASE_IMAGES = the two
 *   base images, seeded once before the builds as a worker does when it starts): from the runner's
 *   start to its end (source fetch, engine start, base images linked from the seed, context, build,
 *   export, push, clean up).
 * - baseline: the same contexts built with BuildKit through the Engine API (`POST /build?version=2`,
 *   what `docker build` does) on the host engine with its build cache (pruned before each app's
 *   cold build; the base images stay, as they would on a developer's machine) and no push.
 * Output: {node_cold_ratio, node_warm_ratio, node_warm_vs_cold, node_dep_change_vs_cold,
 * debian_cold_ratio, debian_warm_ratio, debian_warm_vs_cold} on stdout; times and where slipway's time
 * goes (its log's steps) on stderr.
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { DockerBuildRunner } from '../src/builders/index.js';
import { BuildProgress, readJsonLines } from '../src/builders/progress.js';
import { packContext } from '../src/builders/context.js';
import { loadConfig } from '../src/config.js';
import { appFiles, type AppName } from '../test/fixtures/apps/index.js';
import { REGISTRY, buildRecord, deleteRegistryRepo, git, makeRepo } from '../dev/builders.js';
import { startRedis } from '../dev/redis.js';

const exec = promisify(execFile);
const docker = new Docker();
const run = Date.now().toString(36);
const note = (msg: string) => process.stderr.write(`${msg}\n`);
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

/** BuildKit's own step timings from a build's log lines (`#4 [build 1/7] FROM …`, then `#4 DONE 3.6s`). */
function stepTimes() {
  const names = new Map<string, string>();
  const times: [string, number][] = [];
  return {
    times,
    step(name: string) {
      const m = /^#(\d+) (.*)$/.exec(name);
      if (m) names.set(m[1]!, m[2]!);
    },
    line(text: string) {
      const m = /^#(\d+) DONE (\d+(?:\.\d+)?)s$/.exec(text);
      if (m && names.has(m[1]!)) times.push([names.get(m[1]!)!, Number(m[2])]);
    },
  };
}

interface Timed {
  ms: number;
  /** Milliseconds per slipway step (`fetch source`, `start dedicated engine`, `push …`; BuildKit's steps overlap). */
  phases: [string, number][];
  /** BuildKit's steps that ran (not cached), in seconds. */
  steps: [string, number][];
}

/** A change of the kind the benchmark measures, made in the work tree before its commit. */
type Change = (dir: string) => Promise<void>;

const touchSource = (file: string): Change => async (dir) => {
  const full = path.join(dir, file);
  await writeFile(full, `${await readFile(full, 'utf8')}\n// changed at ${Date.now()}\n`);
};

/**
 * Adds one small package to the lockfile (and package.json), as a developer's `npm install x` does.
 * The lockfile keeps its `resolved` URLs whatever this machine's npmrc says: without them `npm ci`
 * would ask the registry about every package again.
 */
const addDependency: Change = async (dir) => {
  await exec('npm', ['install', '--package-lock-only', '--no-audit', '--no-fund', '--omit-lockfile-registry-resolved=false', 'ms@2.1.3'], { cwd: dir });
};

async function baselineBuild(dir: string, tag: string): Promise<Timed> {
  const context = await packContext(dir, '.', 'Dockerfile');
  const steps = stepTimes();
  const started = performance.now();
  const stream = await docker.buildImage(context.tar, { version: '2', t: tag, dockerfile: context.dockerfile } as Docker.ImageBuildOptions);
  const progress = new BuildProgress(steps);
  await readJsonLines(stream, (m) => progress.feed(m));
  if (!progress.imageId) throw new Error(`baseline build of ${tag} failed: ${progress.failedStep ?? progress.error}`);
  return { ms: performance.now() - started, phases: [], steps: steps.times };
}

async function slipwayBuild(runner: DockerBuildRunner, repo: string, image: string, dir: string, sha: string): Promise<Timed> {
  const phases: [string, number][] = [];
  const steps = stepTimes();
  let current: [string, number] | undefined;
  const close = () => {
    if (current) phases.push([current[0], performance.now() - current[1]]);
  };
  const build = buildRecord({ repo, sha, image, tags: [`b-${sha.slice(0, 7)}`], cloneUrl: `file://${dir}`, cache: true });
  const started = performance.now();
  await runner.run(build, {
    signal: new AbortController().signal,
    log: {
      step: (name) => {
        steps.step(name);
        if (name.startsWith('#')) return;
        close();
        current = [name, performance.now()];
      },
      line: (text) => steps.line(text),
    },
  });
  close();
  return { ms: performance.now() - started, phases, steps: steps.times };
}

interface AppFigures {
  baseline: Timed[];
  slipway: Timed[];
}

async function benchApp(name: AppName, changes: Change[], runner: DockerBuildRunner): Promise<AppFigures> {
  const files = await appFiles(name);
  const image = `${REGISTRY}/slipway-bench/apps-${name}-${run}`;
  const repo = `bench/${name}-${run}`;
  const baseDir = await mkdtemp(path.join(tmpdir(), `bench-${name}-base-`));
  const { dir } = await makeRepo(files);
  const figures: AppFigures = { baseline: [], slipway: [] };
  try {
    // Baseline: the host engine, its build cache pruned once so the first build is cold.
    await exec('docker', ['builder', 'prune', '--all', '--force']);
    await cp(dir, baseDir, { recursive: true });
    for (const [i, change] of [undefined, ...changes].entries()) {
      if (change) await change(baseDir);
      figures.baseline.push(await baselineBuild(baseDir, `slipway-bench/apps-${name}:${run}-${i}`));
      note(`${name} baseline build ${i}: ${round(figures.baseline[i]!.ms / 1000, 1)} s`);
      noteSteps(figures.baseline[i]!);
    }
    for (const [i, change] of [undefined, ...changes].entries()) {
      if (change) {
        await change(dir);
        git(dir, 'add', '-A');
        git(dir, 'commit', '-q', '-m', `change ${i}`);
      }
      const timed = await slipwayBuild(runner, repo, image, dir, git(dir, 'rev-parse', 'HEAD'));
      figures.slipway.push(timed);
      note(`${name} slipway build ${i}: ${round(timed.ms / 1000, 1)} s`);
      for (const [phase, ms] of timed.phases) if (ms >= 100) note(`    ${round(ms / 1000, 1).toFixed(1).padStart(6)} s  ${phase.slice(0, 100)}`);
      noteSteps(timed);
    }
  } finally {
    for (let i = 0; i <= changes.length; i++) await docker.getImage(`slipway-bench/apps-${name}:${run}-${i}`).remove().catch(() => undefined);
    await deleteRegistryRepo(image);
    await rm(baseDir, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  }
  return figures;
}

function noteSteps(t: Timed): void {
  for (const [step, seconds] of t.steps) if (seconds >= 0.1) note(`    ${seconds.toFixed(1).padStart(6)} s  (buildkit) ${step.slice(0, 90)}`);
}

async function main(): Promise<void> {
  const redisServer = await startRedis();
  const redis = new Redis(redisServer.url);
  const dataDir = await mkdtemp(path.join(tmpdir(), 'bench-apps-'));
  // As a worker runs it by default: a repository's engine is kept for its next build (SLIPWAY_BUILDER_KEEP),
  // and the operator's base images (SLIPWAY_BASE_IMAGES) are seeded once, when the worker starts.
  const baseImages = [`${REGISTRY}/slipway/node:20`, `${REGISTRY}/slipway/debian:bookworm`];
  const runner = new DockerBuildRunner({ redis, docker, dataDir, defaults: { isolation: 'dedicated' }, keepEngineMs: loadConfig({}).builderKeepMs ?? 0, baseImages });
  try {
    const seeded = await runner.prepareBaseImages();
    note(`base images seeded at worker start (not in any build's time): ${round(seeded!.ms / 1000, 1)} s`);
    const node = await benchApp('node-api', [touchSource('src/server.ts'), addDependency], runner);
    const debian = await benchApp('debian-tool', [touchSource(await mainSource('debian-tool'))], runner);
    const ratio = (f: AppFigures, i: number) => round(f.slipway[i]!.ms / f.baseline[i]!.ms);
    const own = (f: AppFigures, i: number) => round(f.slipway[i]!.ms / f.slipway[0]!.ms);
    process.stdout.write(
      `${JSON.stringify(
        {
          node_cold_ratio: ratio(node, 0),
          node_warm_ratio: ratio(node, 1),
          node_warm_vs_cold: own(node, 1),
          node_dep_change_vs_cold: own(node, 2),
          debian_cold_ratio: ratio(debian, 0),
          debian_warm_ratio: ratio(debian, 1),
          debian_warm_vs_cold: own(debian, 1),
          seconds: {
            node: { baseline: node.baseline.map((t) => round(t.ms / 1000, 1)), slipway: node.slipway.map((t) => round(t.ms / 1000, 1)) },
            debian: { baseline: debian.baseline.map((t) => round(t.ms / 1000, 1)), slipway: debian.slipway.map((t) => round(t.ms / 1000, 1)) },
          },
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await runner.close();
    redis.disconnect();
    await redisServer.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** The app's main C source: the one file the warm build changes. */
async function mainSource(name: AppName): Promise<string> {
  const files = Object.keys(await appFiles(name));
  const source = files.find((f) => f.endsWith('.c')) ?? files.find((f) => f.endsWith('.go'));
  if (!source) throw new Error(`${name} has no .c or .go source to change`);
  return source;
}

await main();
