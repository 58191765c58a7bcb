import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type Docker from 'dockerode';
import { dirTag, removeEgressRules } from './egress.js';
import { stopSlot, type SlotRecord } from './engine.js';
import { deleteBridge, listBridges, ownerAlive, readJson, removeTree, type Owner } from './host.js';
import { buildersRoot, runsDir, slotsDir } from './paths.js';

export interface ReaperOptions {
  dataDir: string;
  /** The shared engine, where a dead shared build may have left its local tags. */
  docker: Docker;
  log?: (message: string) => void;
}

export interface ReapReport {
  engines: number;
  runs: number;
  bridges: number;
  images: number;
  /** iptables rules of slots that are gone. */
  rules: number;
}

/** A directory with no owner file yet is left alone this long (it may be being created). */
const GRACE_MS = 60_000;

/**
 * Removes what dead builds left: dedicated engines (by pidfile, proven by their exec root), their
 * mounts, cgroups, bridges and data roots (repository caches stay), workspaces, and the shared
 * engine's local tags of those builds (only images labelled with that build's id). Anything whose
 * owning process is alive, or that slipway cannot prove it made, is not touched.
 */
export async function reap(opts: ReaperOptions): Promise<ReapReport> {
  const report: ReapReport = { engines: 0, runs: 0, bridges: 0, images: 0, rules: 0 };
  const say = opts.log ?? (() => undefined);
  const root = buildersRoot(opts.dataDir);

  const slots = slotsDir(root);
  for (const name of await readdir(slots).catch(() => [] as string[])) {
    const slot = path.join(slots, name);
    const record = await readJson<SlotRecord>(path.join(slot, 'slot.json'));
    if (record ? await ownerAlive(record.owner) : await young(slot)) continue;
    if (record) await stopSlot(slot, record);
    else await removeTree(slot);
    report.engines++;
    say(`reaped builder engine ${name}${record ? ` of build ${record.buildId}` : ''}`);
  }

  // Rules are tagged with their slots directory: another data dir's builds are never matched.
  const ours = `${dirTag(slots)}.`;
  const remaining = new Set(await readdir(slots).catch(() => [] as string[]));
  report.rules = await removeEgressRules((tag) => tag.startsWith(ours) && !remaining.has(tag.slice(ours.length)));
  if (report.rules > 0) say(`reaped ${report.rules} iptables rules of ended builds`);

  for (const bridge of await listBridges()) {
    if (!bridge.owner || path.dirname(bridge.owner) !== slots) continue;
    const exists = await stat(bridge.owner).then(() => true, () => false);
    if (exists) continue;
    await deleteBridge(bridge.name);
    report.bridges++;
    say(`reaped bridge ${bridge.name}`);
  }

  const runs = runsDir(opts.dataDir);
  for (const id of await readdir(runs).catch(() => [] as string[])) {
    const dir = path.join(runs, id);
    const run = await readJson<{ owner: Owner; buildId: string; localRefs: string[] }>(path.join(dir, 'run.json'));
    if (run ? await ownerAlive(run.owner) : await young(dir)) continue;
    for (const ref of run?.localRefs ?? []) {
      const info = await opts.docker.getImage(ref).inspect().catch(() => null);
      if (info?.Config?.Labels?.['io.slipway.build'] !== run?.buildId) continue;
      await opts.docker.getImage(ref).remove({ noprune: false }).then(() => report.images++, () => undefined);
    }
    await removeTree(dir);
    report.runs++;
    say(`reaped workspace of build ${id}`);
  }
  return report;
}

async function young(dir: string): Promise<boolean> {
  const st = await stat(dir).catch(() => null);
  return !!st && Date.now() - st.mtimeMs < GRACE_MS;
}

/** Reaps once now and then every `intervalMs` (default 5 min) until stopped. */
export function startReaper(opts: ReaperOptions & { intervalMs?: number }): { stop(): Promise<void>; first: Promise<ReapReport> } {
  let running: Promise<unknown> = Promise.resolve();
  const tick = () => {
    const next = running.then(() => reap(opts));
    running = next.catch((err: unknown) => opts.log?.(`reaper: ${(err as Error).message}`));
    return next;
  };
  const first = tick();
  const timer = setInterval(() => void tick(), opts.intervalMs ?? 5 * 60_000);
  timer.unref();
  return {
    first,
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}
