import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Docker from 'dockerode';
import { BuildError } from './errors.js';
import {
  bridgeNet,
  createBridge,
  createLimitedCgroup,
  deleteBridge,
  kill,
  ownerAlive,
  pidFromFile,
  processesUnder,
  removeCgroup,
  removeTree,
  selfOwner,
  unmountUnder,
  waitGone,
  writeJson,
  type Owner,
} from './host.js';
import { cacheDir, slotsDir } from './paths.js';
import { seedDataRoot } from './seed.js';
import { describePolicy, openEgress, refusalSentence, removeEgressRules, slotTag, type EgressPolicy, type Endpoint, type Refusal } from './egress.js';

/** The Docker engine one build talks to, and how to let it go when the build ends. */
export interface BuilderEngine {
  docker: Docker;
  isolation: 'dedicated' | 'shared';
  /** What the egress policy refused this build's RUN steps (one sentence), or null: nothing, or no policy (shared). */
  egressRefusals(): Promise<string | null>;
  /** Lets the engine go; `reusable`: it ended a build cleanly, so a keeper may hold it for the repository's next build. */
  close(reusable?: boolean): Promise<void>;
}

/** A dedicated engine as its keeper sees it (src/builders/keeper.ts). */
export interface DedicatedEngine extends BuilderEngine {
  /** Its data root is the repository's cache: the only kind worth keeping for the next build. */
  cached: boolean;
  /** The engine still runs and answers. */
  alive(): Promise<boolean>;
  /** Hands a kept engine to the next build of its repository: its slot names that build, refusals count from now. */
  adopt(buildId: string): Promise<void>;
}

/** What a dedicated engine's slot directory records, so a reaper can undo it after a crash. */
export interface SlotRecord {
  owner: Owner;
  buildId: string;
  bridge: string | null;
  cgroup: string;
  dataRoot: string;
  /** The data root is a repository's cache: keep it. */
  keepDataRoot: boolean;
  /** The lock file held on the cache data root, if any. */
  cacheLock: string | null;
}

export interface DedicatedEngineOptions {
  /** `<data dir>/builders`. */
  root: string;
  buildId: string;
  repo: string;
  cache: boolean;
  memoryBytes?: number;
  cpus?: number;
  /** Registries the engine may pull base images from over plain http (loopback already is). */
  insecureRegistries?: readonly string[];
  /** What RUN steps may reach; default `public`. */
  egress?: EgressPolicy;
  /** slipway's own endpoints, never reachable from a build. */
  protect?: readonly Endpoint[];
  dockerdPath?: string;
  /** A seed data root (src/builders/seed.ts): a data root without images yet starts as its hard-linked copy. */
  seed?: string | null;
  /** This data root, kept after the engine, instead of the slot's or the repository's (the seed's own engine). */
  dataRoot?: string;
  log: (line: string) => void;
}

/** The exec root is where the dockerd's command line proves which slot it belongs to. */
export const execRootOf = (slot: string) => path.join(slot, 'e');

/**
 * Starts a dockerd for one build alone: its own data root, exec root, socket, pidfile, containerd,
 * bridge (slwb<k>, no iptables, no masquerading: the host engine's docker0 is never touched) and
 * cgroup parent carrying the build's memory and CPU limits. With `cache`, the data root is the
 * repository's own (`cache/<owner>__<name>`), kept for its next build; else it lives in the slot and
 * goes with it. The engine gets SIGTERM if the worker dies (PDEATHSIG); the reaper does the rest.
 */
export async function startDedicatedEngine(opts: DedicatedEngineOptions): Promise<DedicatedEngine> {
  const root = path.resolve(opts.root);
  const slot = path.join(slotsDir(root), randomBytes(4).toString('hex'));
  const execRoot = execRootOf(slot);
  const socket = path.join(slot, 'docker.sock');
  const pidfile = path.join(slot, 'docker.pid');
  const cgroup = `slipway-build-${path.basename(slot)}`;
  await mkdir(slot, { recursive: true });

  let dataRoot = opts.dataRoot ?? path.join(slot, 'data');
  let cacheLock: string | null = null;
  if (opts.cache && !opts.dataRoot) {
    const repoRoot = path.join(cacheDir(root), opts.repo.replace(/[^A-Za-z0-9_.-]/g, '__'));
    await mkdir(cacheDir(root), { recursive: true });
    cacheLock = await lockCache(`${repoRoot}.lock`);
    if (cacheLock) dataRoot = repoRoot;
    else opts.log('cache: this repository\'s cache is in use by another build; building without it');
  }
  const record: SlotRecord = {
    owner: await selfOwner(),
    buildId: opts.buildId,
    bridge: null,
    cgroup,
    dataRoot,
    keepDataRoot: cacheLock !== null || opts.dataRoot !== undefined,
    cacheLock,
  };
  await writeJson(path.join(slot, 'slot.json'), record);
  await mkdir(execRoot, { recursive: true });

  let child: ReturnType<typeof spawn> | undefined;
  const teardown = async () => {
    await stopSlot(slot, record, child);
  };
  try {
    const bridge = await createBridge(slot);
    record.bridge = bridge.name;
    await writeJson(path.join(slot, 'slot.json'), record);
    const policy = opts.egress ?? { kind: 'public' };
    const egress = await openEgress({ policy, bridge: bridge.name, subnet: `${bridgeNet(bridge.index)}.0/24`, slot: slotTag(slot), protect: opts.protect ?? [] });
    opts.log(`network: egress policy ${describePolicy(policy)} on ${bridge.name}`);
    const limited = await createLimitedCgroup(cgroup, { memoryBytes: opts.memoryBytes, cpus: opts.cpus });
    if (!limited && (opts.memoryBytes || opts.cpus)) opts.log('warning: cgroup v1 limits unavailable here; memory/cpus not enforced');
    if (opts.seed && !opts.dataRoot) {
      const t = Date.now();
      if (await seedDataRoot(opts.seed, dataRoot)) opts.log(`base images: this data root starts with the worker's (SLIPWAY_BASE_IMAGES), linked in ${Date.now() - t} ms`);
    }
    await writeFile(path.join(slot, 'daemon.json'), '{}');
    const args = [
      '--pdeathsig', 'TERM', '--',
      opts.dockerdPath ?? 'dockerd',
      `--config-file=${path.join(slot, 'daemon.json')}`,
      `--data-root=${dataRoot}`,
      `--exec-root=${execRoot}`,
      `--pidfile=${pidfile}`,
      `--host=unix://${socket}`,
      `--bridge=${bridge.name}`,
      '--iptables=false',
      '--ip-masq=false',
      '--ip-forward=false',
      '--userland-proxy=false',
      '--storage-driver=overlay2',
      `--cgroup-parent=${cgroup}`,
      '--log-level=warn',
      ...(opts.insecureRegistries ?? []).map((r) => `--insecure-registry=${r}`),
    ];
    const logFile = await open(path.join(slot, 'dockerd.log'), 'a');
    try {
      child = spawn('setpriv', args, { stdio: ['ignore', logFile.fd, logFile.fd], env: { PATH: process.env.PATH } });
    } finally {
      await logFile.close();
    }
    const exited = new Promise<void>((resolve) => child!.once('exit', () => resolve()));
    child.on('error', () => undefined);
    const docker = new Docker({ socketPath: socket });
    const started = Date.now();
    for (;;) {
      const ready = await Promise.race([
        docker.ping().then(() => true, () => false),
        exited.then(() => 'exited' as const),
      ]);
      if (ready === true) break;
      if (ready === 'exited' || Date.now() - started > 30_000) {
        const tail = (await readFile(path.join(slot, 'dockerd.log'), 'utf8').catch(() => '')).trim().split('\n').slice(-3).join(' | ');
        throw new BuildError('engine_failed', `builder engine did not start: ${tail || 'no output'}`, true);
      }
      await new Promise((r) => setTimeout(r, 40));
    }
    opts.log(`engine ready in ${Date.now() - started} ms (${cacheLock ? 'repository cache' : opts.dataRoot ? 'seed data root' : 'fresh data root'})`);
    let counted: Refusal[] = [];
    return {
      docker,
      isolation: 'dedicated',
      cached: record.keepDataRoot,
      egressRefusals: async () => refusalSentence(policy, since(counted, await egress.refusals())),
      alive: async () => child!.exitCode === null && child!.signalCode === null && (await docker.ping().then(() => true, () => false)),
      adopt: async (buildId) => {
        counted = await egress.refusals();
        record.buildId = buildId;
        await writeJson(path.join(slot, 'slot.json'), record);
      },
      close: teardown,
    };
  } catch (err) {
    await teardown();
    throw err;
  }
}

async function findDockerd(execRoot: string): Promise<number | undefined> {
  for (const pid of await processesUnder(path.dirname(execRoot))) {
    const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (args.includes(`--exec-root=${execRoot}`)) return pid;
  }
  return undefined;
}

/** Refusals counted since an earlier reading of the same rules. */
function since(before: readonly Refusal[], now: readonly Refusal[]): Refusal[] {
  return now
    .map((r) => ({ what: r.what, packets: r.packets - (before.find((b) => b.what === r.what)?.packets ?? 0) }))
    .filter((r) => r.packets > 0);
}

async function allGone(pids: readonly number[], ms: number): Promise<boolean> {
  const gone = await Promise.all(pids.map((p) => waitGone(p, ms)));
  return gone.every(Boolean);
}

/** An exclusive lock file naming its owner; a lock whose owner is dead is taken over. */
async function lockCache(lockPath: string): Promise<string | null> {
  const me = await selfOwner();
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(lockPath, 'wx');
      await fh.writeFile(JSON.stringify(me));
      await fh.close();
      return lockPath;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = JSON.parse(await readFile(lockPath, 'utf8').catch(() => '{}')) as Partial<Owner>;
      if (holder.pid && holder.start !== undefined && (await ownerAlive(holder as Owner))) return null;
      await rm(lockPath, { force: true });
    }
  }
  return null;
}

/**
 * Stops a slot's engine and removes everything it made: the dockerd (SIGTERM, then SIGKILL), its
 * containerd, the build containers in its cgroup, mounts, bridge, cgroup, slot directory and,
 * unless it is a repository cache, the data root. Used by the build itself and by the reaper.
 */
export async function stopSlot(slot: string, record: SlotRecord, child?: ReturnType<typeof spawn>): Promise<void> {
  const execRoot = execRootOf(slot);
  // A dockerd already shutting down may have removed its pidfile: its command line still names the slot.
  const pid = child?.pid ?? (await pidFromFile(path.join(slot, 'docker.pid'), `--exec-root=${execRoot}`)) ?? (await findDockerd(execRoot));
  if (pid !== undefined && (child ? child.exitCode === null && child.signalCode === null : true)) {
    const helpers = (await processesUnder(slot)).filter((p) => p !== pid);
    kill(pid, 'SIGTERM');
    // dockerd 20.10 stops its containerd as the last step of a clean shutdown, then idles about a
    // second before it exits: once its containerd is gone, nothing of the data root is left to write.
    if (helpers.length > 0 && (await allGone(helpers, 10_000)) && !(await waitGone(pid, 100))) kill(pid, 'SIGKILL');
    if (!(await waitGone(pid, 10_000))) kill(pid, 'SIGKILL');
    await waitGone(pid, 5_000);
  }
  // A dockerd that died hard leaves its containerd (and anything else naming the slot) behind.
  for (const left of await processesUnder(slot)) {
    kill(left, 'SIGKILL');
    await waitGone(left, 5_000);
  }
  await removeCgroup(record.cgroup);
  await unmountUnder(record.dataRoot);
  await unmountUnder(slot);
  await removeEgressRules((tag) => tag === slotTag(slot));
  if (record.bridge) await deleteBridge(record.bridge);
  if (!record.keepDataRoot) await removeTree(record.dataRoot);
  await removeTree(slot);
  if (record.cacheLock) await rm(record.cacheLock, { force: true });
}

/** The configured engine (DOCKER_HOST), shared by builds; closing it leaves the engine running. */
export function sharedEngine(docker: Docker): BuilderEngine {
  return { docker, isolation: 'shared', egressRefusals: async () => null, close: async () => undefined };
}
