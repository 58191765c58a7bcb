import { mkdir, readdir, readFile, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { exec } from './exec.js';

/** Host-level helpers for dedicated engines: process identity, mounts, cgroups, bridges. */

/** Who owns a directory under the builders root: a process, identified by pid and start time. */
export interface Owner {
  pid: number;
  start: string;
}

export async function procStart(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime) counts from after the command name, which may hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export async function selfOwner(): Promise<Owner> {
  return { pid: process.pid, start: (await procStart(process.pid)) ?? '' };
}

export async function ownerAlive(owner: Owner): Promise<boolean> {
  return (await procStart(owner.pid)) === owner.start;
}

export async function writeJson(file: string, value: unknown): Promise<void> {
  await writeFile(`${file}.tmp`, JSON.stringify(value));
  await rename(`${file}.tmp`, file);
}

export async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** The pid in a pidfile if that process's command line contains `marker` (proof that it is ours). */
export async function pidFromFile(pidfile: string, marker: string): Promise<number | undefined> {
  const pid = Number((await readFile(pidfile, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 1) return undefined;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.split('\0').some((arg) => arg.includes(marker)) ? pid : undefined;
}

/** Processes whose command line names `dir` or a path inside it (a slot's dockerd, containerd, shims). */
export async function processesUnder(dir: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const args = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (args.some((a) => a === dir || a.includes(`${dir}/`))) found.push(Number(entry));
  }
  return found;
}

export function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

export async function waitGone(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  const start = await procStart(pid);
  while (Date.now() < until) {
    const now = await procStart(pid);
    // A zombie child still has /proc/<pid>; its state field is Z.
    if (now === undefined || now !== start || (await isZombie(pid))) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

async function isZombie(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
}

/** Lazily unmounts every mount at or below `dir`, deepest first. */
export async function unmountUnder(dir: string): Promise<void> {
  const info = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const points = info
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p && (p === dir || p.startsWith(prefix)))
    .map((p) => p.replace(/\\040/g, ' '))
    .sort((a, b) => b.length - a.length);
  for (const p of points) await exec('umount', ['-l', p]);
}

/** Removes a directory tree after unmounting anything inside it. */
export async function removeTree(dir: string): Promise<void> {
  await unmountUnder(dir);
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

const CGROUP_ROOT = '/sys/fs/cgroup';
const LIMITED = ['memory', 'cpu'];

/** cgroup v1 controllers that hold `name` (top level). */
async function cgroupDirs(name: string): Promise<string[]> {
  const controllers = await readdir(CGROUP_ROOT).catch(() => [] as string[]);
  return controllers.map((c) => path.join(CGROUP_ROOT, c, name));
}

/**
 * Creates the parent cgroup of a dedicated engine's build containers with the build's limits
 * (cgroup v1). Answers false when limits cannot be set here.
 */
export async function createLimitedCgroup(name: string, limits: { memoryBytes?: number; cpus?: number }): Promise<boolean> {
  try {
    for (const c of LIMITED) await mkdir(path.join(CGROUP_ROOT, c, name), { recursive: true });
    if (limits.memoryBytes) {
      await writeFile(path.join(CGROUP_ROOT, 'memory', name, 'memory.limit_in_bytes'), String(limits.memoryBytes));
    }
    if (limits.cpus) {
      await writeFile(path.join(CGROUP_ROOT, 'cpu', name, 'cpu.cfs_period_us'), '100000');
      await writeFile(path.join(CGROUP_ROOT, 'cpu', name, 'cpu.cfs_quota_us'), String(Math.round(limits.cpus * 100_000)));
    }
    return true;
  } catch {
    return false;
  }
}

/** Pids of every process in the cgroup `name` (any controller, any depth). */
export async function cgroupPids(name: string): Promise<number[]> {
  const pids = new Set<number>();
  const walk = async (dir: string): Promise<void> => {
    const procs = await readFile(path.join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const p of procs.split('\n')) if (p.trim()) pids.add(Number(p));
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const e of entries) if (e.isDirectory()) await walk(path.join(dir, e.name));
  };
  for (const dir of await cgroupDirs(name)) await walk(dir);
  return [...pids];
}

/**
 * Kills what runs in the cgroup, then removes its directories (deepest first). Processes may take
 * a moment to die (or be started by a stopping engine), so it kills and retries for up to `ms`.
 */
export async function removeCgroup(name: string, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  const rmdirDeep = async (dir: string): Promise<boolean> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => null);
    if (!entries) return true;
    let clear = true;
    for (const e of entries) if (e.isDirectory()) clear = (await rmdirDeep(path.join(dir, e.name))) && clear;
    try {
      await rmdir(dir);
      return clear;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT';
    }
  };
  for (;;) {
    for (const pid of await cgroupPids(name)) kill(pid, 'SIGKILL');
    let gone = true;
    for (const dir of await cgroupDirs(name)) gone = (await rmdirDeep(dir)) && gone;
    if (gone || Date.now() > until) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export const BRIDGE_PREFIX = 'slwb';

/** The first three octets of bridge k's /24 (inside egress.ts's BUILD_BRIDGES). */
export const bridgeNet = (k: number) => `10.231.${k}`;

/**
 * Creates a bridge `slwb<k>` on the private net 10.231.<k>.0/24 for one dedicated engine.
 * `ip link add` fails when the name exists, which makes it the lock between concurrent builds
 * (also across processes). The alias records which slot directory owns it.
 */
export async function createBridge(owner: string): Promise<{ name: string; index: number }> {
  const order = Array.from({ length: 250 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
  for (const k of order) {
    const name = `${BRIDGE_PREFIX}${k}`;
    const add = await exec('ip', ['link', 'add', 'name', name, 'type', 'bridge']);
    if (add.code !== 0) {
      if (/exists/i.test(add.stderr)) continue;
      throw new Error(`cannot create bridge ${name}: ${add.stderr.trim()}`);
    }
    const steps = [
      ['link', 'set', 'dev', name, 'alias', `slipway:${owner}`],
      ['addr', 'add', `${bridgeNet(k)}.1/24`, 'dev', name],
      ['link', 'set', 'dev', name, 'up'],
    ];
    for (const args of steps) {
      const res = await exec('ip', args);
      if (res.code !== 0) {
        await deleteBridge(name);
        throw new Error(`cannot set up bridge ${name}: ${res.stderr.trim()}`);
      }
    }
    return { name, index: k };
  }
  throw new Error('no free builder bridge (slwb1…slwb250 all in use)');
}

export async function deleteBridge(name: string): Promise<void> {
  await exec('ip', ['link', 'del', 'dev', name]);
}

/** Bridges named slwb* with the owner recorded in their alias. */
export async function listBridges(): Promise<{ name: string; owner: string | undefined }[]> {
  const res = await exec('ip', ['-o', 'link', 'show', 'type', 'bridge']);
  const out: { name: string; owner: string | undefined }[] = [];
  for (const line of res.stdout.split('\n')) {
    const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1];
    if (!name?.startsWith(BRIDGE_PREFIX)) continue;
    const owner = /alias slipway:(\S+)/.exec(line)?.[1];
    out.push({ name, owner });
  }
  return out;
}
