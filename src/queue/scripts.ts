import type { Redis } from 'ioredis';
import { buildKeys, CHANGING_BUILD_FIELDS, keys, LuaScript, decodeBuild, decodeStoredBuild, type BuildRecord, type Receipt, type VersionGuard } from '../store/index.js';
import { laneKeys } from './keys.js';

/*
 * The lane scripts. Each runs atomically in Redis, so the lanes, the slot counters and the build
 * records never disagree, whichever API process or worker runs them at the same time.
 * Record fields are stored JSON-encoded (see src/store/builds.ts): a status reads '"queued"'.
 * Every script that frees or fills a slot ends with a dispatch pass and answers the builds it
 * picked, so one round trip both changes state and moves the next builds towards BullMQ.
 * The scripts are src/queue/lua/*.lua, each with a header saying what it does, its ARGV and its
 * answer; their shared helpers are lua/includes/lanes.lua. Keys are computed inside the scripts
 * (per repository / per build) from the constants below, so these scripts target a single Redis
 * (standalone or Sentinel), not Redis Cluster.
 */

/** What every lane script (src/queue/lua) gets ahead of its text: the key names, and the record fields that change. */
const CONSTANTS = {
  BUILD: buildKeys.prefix,
  BY_STATUS: buildKeys.statusPrefix,
  BY_REPO: buildKeys.repoPrefix,
  ALL: buildKeys.all,
  SEQ: buildKeys.seq,
  LANE: laneKeys.lanePrefix,
  RING: laneKeys.ring,
  RINGSEQ: laneKeys.ringSeq,
  RUNNING: laneKeys.running,
  CONC: laneKeys.concurrency,
  CSUP: laneKeys.cancelSuperseded,
  ACTIVE: laneKeys.active,
  REFQ: laneKeys.refPrefix,
  WORKERS: laneKeys.workers,
  SLOTS: laneKeys.slots,
  ABORT_CH: laneKeys.abortChannel,
  CHANGING: Object.keys(CHANGING_BUILD_FIELDS),
  /** what a receipt's key gets for the key beside it that holds the builds its submission superseded */
  SUPERSEDED_OF: keys.supersededOf(''),
};
const lua = (name: string) => LuaScript.fromFile(new URL(`./lua/${name}.lua`, import.meta.url), CONSTANTS);

/** One submission of a batch. */
export interface Submission {
  /** `fields`: the new record as hash field/value strings (src/store encodeBuild). */
  builds: { id: string; repo: string; ref: string; rules: string[]; fields: string[] }[];
  concurrency?: number;
  cancelSuperseded?: boolean;
  /** Submit only when the receipt's key is new, and store the receipt along. */
  receipt?: Receipt;
  /** Submit only while it holds. */
  guard?: VersionGuard;
}

export interface SubmitBatch {
  now: number;
  finishedAt: string;
  /** Publish the new and superseded records on this pub/sub channel (instead of answering the superseded ones). */
  events?: string;
  subs: Submission[];
}

/** What became of one submission; nothing changed for it unless `queued`. */
export type SubmissionAnswer =
  | { outcome: 'stale' | 'duplicate' }
  | { outcome: 'duplicate_build'; id: string }
  | { outcome: 'replayed'; newest: number }
  | { outcome: 'queued'; superseded: string[]; aborted: string[]; supersededRecords: BuildRecord[] };

/** Builds a dispatch pass picked: add a work-queue job `job` for build `id`. */
export type Picked = { id: string; job: string }[];

export type ClaimResult =
  | { kind: 'stale' }
  | { kind: 'start'; attempts: number; record: BuildRecord }
  | { kind: 'resume'; attempts: number; record: BuildRecord; abort: AbortNote | null };

export interface AbortNote {
  id: string;
  reason: 'cancelled' | 'superseded';
  by: string;
}

const scripts = {
  submit: lua('submit'),
  dispatch: lua('dispatch'),
  claim: lua('claim'),
  finish: lua('finish'),
  handback: lua('handback'),
  cancel: lua('cancel'),
  heartbeat: lua('heartbeat'),
  leave: lua('leave'),
};

function picked(flat: unknown): Picked {
  const a = (flat ?? []) as string[];
  const out: Picked = [];
  for (let i = 0; i < a.length; i += 2) out.push({ id: a[i]!, job: a[i + 1]! });
  return out;
}

function idList(spaced: string): string[] {
  return spaced === '' ? [] : spaced.split(' ');
}

function recordOf(flat: unknown): BuildRecord | null {
  const a = (flat ?? []) as string[];
  const hash: Record<string, string> = {};
  for (let i = 0; i < a.length; i += 2) hash[a[i]!] = a[i + 1]!;
  return decodeBuild(hash);
}

/** Typed calls of the lane scripts over one connection. */
export class LaneScripts {
  constructor(private readonly redis: Redis) {}

  /** Applies the submissions in order, in one script; `supersededRecords` are empty when `events` published them. */
  async submit(batch: SubmitBatch): Promise<{ answers: SubmissionAnswer[]; picked: Picked }> {
    // Flat arguments, in the order the script takes them ('' = absent).
    const args: (string | number)[] = [batch.now, batch.finishedAt, batch.events ?? '', batch.subs.length];
    for (const s of batch.subs) {
      const { guard, receipt } = s;
      args.push(
        s.builds.length,
        s.concurrency ?? '',
        s.cancelSuperseded === undefined ? '' : s.cancelSuperseded ? '1' : '0',
        guard?.key ?? '', guard?.field ?? '', guard?.value ?? '',
        receipt?.key ?? '', receipt?.ttlMs ?? '', receipt?.value ?? '', receipt?.journal.key ?? '', receipt?.journal.cap ?? '',
        receipt?.mark?.key ?? '', receipt?.mark?.field ?? '', receipt?.mark?.value ?? '',
        receipt?.newest?.key ?? '', receipt?.newest?.field ?? '', receipt?.newest?.value ?? '',
      );
      for (const b of s.builds) args.push(b.id, b.repo, b.ref, b.rules.length, ...b.rules, b.fields.length, ...b.fields);
    }
    const [text, next, recs] = (await scripts.submit.run(this.redis, [], args)) as [string, unknown, string[][][]];
    const answers = text.split('\n').map((line, i): SubmissionAnswer => {
      const [outcome, a = '', b = ''] = line.split('\t');
      if (outcome === 'stale' || outcome === 'duplicate') return { outcome };
      if (outcome === 'duplicate_build') return { outcome, id: a };
      if (outcome === 'replayed') return { outcome, newest: Number(a) };
      // Written by this very script a moment ago: decoded without re-validating (see decodeStoredBuild).
      const supersededRecords: BuildRecord[] = [];
      for (const flat of recs[i] ?? []) {
        const r = decodeStoredBuild(flat);
        if (r) supersededRecords.push(r);
      }
      return { outcome: 'queued', superseded: idList(a), aborted: idList(b), supersededRecords };
    });
    return { answers, picked: picked(next) };
  }

  async dispatch(nowMs: number): Promise<Picked> {
    return picked(await scripts.dispatch.run(this.redis, [], [nowMs]));
  }

  async claim(now: number, id: string, job: string, owner: string, startedAt: string): Promise<ClaimResult> {
    const r = (await scripts.claim.run(this.redis, [], [now, id, job, owner, JSON.stringify(startedAt)])) as [string, number?, unknown?, string?];
    const record = recordOf(r[2]);
    if (r[0] === 'stale' || !record) return { kind: 'stale' };
    if (r[0] === 'start') return { kind: 'start', attempts: Number(r[1]), record };
    return { kind: 'resume', attempts: Number(r[1]), record, abort: r[3] ? (JSON.parse(r[3]) as AbortNote) : null };
  }

  /** `fields`: record fields to set with the new status (values as they go into the record). */
  async finish(now: number, id: string, job: string, status: string, fields: Record<string, unknown>): Promise<{ record: BuildRecord | null; picked: Picked }> {
    const kv: string[] = [];
    for (const [k, v] of Object.entries(fields)) kv.push(k, JSON.stringify(v));
    const [ended, rec, next] = (await scripts.finish.run(this.redis, [], [now, id, status, JSON.stringify(kv), job])) as [number, unknown, unknown];
    return { record: ended === 1 ? recordOf(rec) : null, picked: picked(next) };
  }

  async handback(now: number, id: string, owner: string): Promise<{ kind: 'handed-back'; record: BuildRecord | null; picked: Picked } | { kind: 'not-owner' } | { kind: 'abort'; note: AbortNote }> {
    const r = (await scripts.handback.run(this.redis, [], [now, id, owner])) as [string, unknown?, unknown?];
    if (r[0] === 'handed-back') return { kind: 'handed-back', record: recordOf(r[1]), picked: picked(r[2]) };
    if (r[0] === 'abort') return { kind: 'abort', note: JSON.parse(String(r[1])) as AbortNote };
    return { kind: 'not-owner' };
  }

  async cancel(now: number, id: string, by: string, finishedAt: string, error: string): Promise<{ outcome: 'missing' | 'cancelled' | 'requested' | 'ended'; record: BuildRecord | null; picked: Picked }> {
    const r = (await scripts.cancel.run(this.redis, [], [now, id, by, JSON.stringify(finishedAt), JSON.stringify(error)])) as [string, unknown?, unknown?];
    return { outcome: r[0] as 'missing' | 'cancelled' | 'requested' | 'ended', record: recordOf(r[1]), picked: picked(r[2]) };
  }

  async heartbeat(worker: string, slots: number, expiresMs: number): Promise<void> {
    await scripts.heartbeat.run(this.redis, [], [worker, slots, expiresMs]);
  }

  async leave(worker: string): Promise<void> {
    await scripts.leave.run(this.redis, [], [worker]);
  }
}
