import { z } from 'zod';

/** One push, as slipway understands it: everything the rules and the builders need. */
export interface SourceEvent {
  /** owner/name */
  repository: string;
  /** Full ref: refs/heads/main, refs/tags/v1.2.3 */
  ref: string;
  /** `branch`, `tag`, or null for any other kind of ref (refs/notes/…). */
  source: 'branch' | 'tag' | null;
  /** The commit to build (for an annotated tag, its commit, not the tag object). */
  sha: string;
  before: string;
  created: boolean;
  deleted: boolean;
  forced: boolean;
  /** added ∪ modified ∪ removed over the payload's commits; undefined when the payload lists none. */
  changed: string[] | undefined;
  pusher: string;
  headCommitMessage: string | null;
  cloneUrl: string | null;
  defaultBranch: string | null;
  /** When GitHub says the push happened (`repository.pushed_at`), in ms since the epoch; null when the payload has none. */
  pushedAt: number | null;
}

const Commit = z.object({
  id: z.string().optional(),
  message: z.string().optional(),
  added: z.array(z.string()).optional(),
  removed: z.array(z.string()).optional(),
  modified: z.array(z.string()).optional(),
});

/** The fields of GitHub's push payload slipway reads; anything else is ignored. */
export const PushPayload = z.object({
  ref: z.string().min(1),
  before: z.string(),
  after: z.string(),
  created: z.boolean().default(false),
  deleted: z.boolean().default(false),
  forced: z.boolean().default(false),
  commits: z.array(Commit).default([]),
  head_commit: Commit.nullable().optional(),
  repository: z.object({
    full_name: z.string().regex(/^[^/\s]+\/[^/\s]+$/, 'must be owner/name'),
    clone_url: z.string().nullable().optional(),
    default_branch: z.string().nullable().optional(),
    master_branch: z.string().nullable().optional(),
    // Unix seconds in push payloads (an ISO string in some other events).
    pushed_at: z.union([z.number(), z.string()]).nullable().optional(),
  }),
  pusher: z.object({ name: z.string().nullable().optional(), login: z.string().nullable().optional() }).nullable().optional(),
  sender: z.object({ login: z.string().nullable().optional() }).nullable().optional(),
});
export type PushPayload = z.infer<typeof PushPayload>;

const ZEROS = /^0+$/;

/** Turns a validated push payload into a SourceEvent. */
export function sourceEventFromPush(p: PushPayload): SourceEvent {
  const source = p.ref.startsWith('refs/heads/') ? 'branch' : p.ref.startsWith('refs/tags/') ? 'tag' : null;
  const files = new Set<string>();
  for (const c of p.commits) for (const f of [...(c.added ?? []), ...(c.modified ?? []), ...(c.removed ?? [])]) files.add(f);
  const head = p.head_commit ?? null;
  return {
    repository: p.repository.full_name,
    ref: p.ref,
    source,
    // A tag push carries the tag object in `after` for annotated tags; head_commit is the commit.
    sha: head?.id && !ZEROS.test(head.id) ? head.id : p.after,
    before: p.before,
    created: p.created,
    deleted: p.deleted || ZEROS.test(p.after),
    forced: p.forced,
    changed: source === 'branch' && files.size > 0 ? [...files] : undefined,
    pusher: p.pusher?.name ?? p.pusher?.login ?? p.sender?.login ?? 'unknown',
    headCommitMessage: head?.message ?? null,
    cloneUrl: p.repository.clone_url ?? null,
    defaultBranch: p.repository.default_branch ?? p.repository.master_branch ?? null,
    pushedAt: pushedAtOf(p.repository.pushed_at),
  };
}

function pushedAtOf(v: number | string | null | undefined): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v * 1000 : null;
  const ms = typeof v === 'string' ? Date.parse(v) : NaN;
  return Number.isFinite(ms) ? ms : null;
}

const SKIP_CI = /\[(skip ci|ci skip|no ci|skip actions|actions skip)\]/i;

/** GitHub's own skip markers in the head commit message. */
export function skipMarker(message: string | null): string | null {
  const m = message ? SKIP_CI.exec(message) : null;
  return m ? m[0] : null;
}
