import { describe, expect, it } from 'vitest';
import { createVerifier, PushPayload, skipMarker, sourceEventFromPush } from '../src/webhooks/index.js';
import { sign } from '../dev/webhooks.js';

const base = {
  before: '1'.repeat(40),
  after: '2'.repeat(40),
  repository: { full_name: 'acme/web', clone_url: 'https://github.com/acme/web.git', default_branch: 'trunk' },
  pusher: { name: 'ada', email: 'ada@example.com' },
};

function event(p: Record<string, unknown>) {
  return sourceEventFromPush(PushPayload.parse({ ...base, ...p }));
}

describe('a push as a SourceEvent', () => {
  it('takes a branch push apart: source, sha, changed files (union, once each), pusher, default branch', () => {
    const e = event({
      ref: 'refs/heads/feature/login',
      created: true,
      forced: true,
      commits: [
        { id: 'a'.repeat(40), message: 'one', added: ['a.ts'], modified: ['README.md'], removed: [] },
        { id: '2'.repeat(40), message: 'two', added: [], modified: ['a.ts'], removed: ['old.ts'] },
      ],
      head_commit: { id: '2'.repeat(40), message: 'two' },
    });
    expect(e).toEqual({
      repository: 'acme/web',
      ref: 'refs/heads/feature/login',
      source: 'branch',
      sha: '2'.repeat(40),
      before: '1'.repeat(40),
      created: true,
      deleted: false,
      forced: true,
      changed: ['a.ts', 'README.md', 'old.ts'],
      pusher: 'ada',
      headCommitMessage: 'two',
      cloneUrl: 'https://github.com/acme/web.git',
      defaultBranch: 'trunk',
      pushedAt: null,
    });
  });

  it('reads repository.pushed_at as unix seconds (push events) or an ISO date', () => {
    expect(event({ ref: 'refs/heads/main', repository: { full_name: 'acme/web', pushed_at: 1_700_000_000 } }).pushedAt).toBe(1_700_000_000_000);
    expect(event({ ref: 'refs/heads/main', repository: { full_name: 'acme/web', pushed_at: '2026-12-04T01:00:00Z' } }).pushedAt).toBe(Date.parse('2026-12-04T01:00:00Z'));
    expect(event({ ref: 'refs/heads/main', repository: { full_name: 'acme/web', pushed_at: 'not a date' } }).pushedAt).toBeNull();
  });

  it('builds an annotated tag from its commit (head_commit), not the tag object (after)', () => {
    const e = event({ ref: 'refs/tags/v1.0.0', after: 'f'.repeat(40), head_commit: { id: 'c'.repeat(40), message: 'release' }, commits: [] });
    expect(e).toMatchObject({ source: 'tag', sha: 'c'.repeat(40), changed: undefined });
  });

  it('has no changed files for a tag push or when no commit lists files (the paths filter then passes)', () => {
    expect(event({ ref: 'refs/tags/v1', commits: [{ id: 'x', added: ['a'] }], head_commit: null }).changed).toBeUndefined();
    expect(event({ ref: 'refs/heads/main', commits: [{ id: 'x', message: 'm' }], head_commit: null }).changed).toBeUndefined();
  });

  it('recognises a deleted ref by `deleted` or an all-zero `after`', () => {
    expect(event({ ref: 'refs/heads/x', deleted: true, after: '0'.repeat(40), head_commit: null }).deleted).toBe(true);
    expect(event({ ref: 'refs/heads/x', after: '0'.repeat(40), head_commit: null }).deleted).toBe(true);
  });

  it('names other refs as neither branch nor tag', () => {
    expect(event({ ref: 'refs/notes/commits' }).source).toBeNull();
  });

  it('finds GitHub skip markers in any case', () => {
    for (const m of ['[skip ci]', '[ci skip]', '[no ci]', '[skip actions]', '[actions skip]', '[SKIP CI]']) expect(skipMarker(`fix\n\n${m}`)).toBe(m);
    expect(skipMarker('skip ci please')).toBeNull();
    expect(skipMarker(null)).toBeNull();
  });
});

describe('signature verification', () => {
  it('accepts the current and the previous secret, nothing else', async () => {
    const verify = createVerifier({ shared: 'new-secret', previous: 'old-secret' });
    const body = '{"zen":"Design for failure."}';
    expect(await verify(body, sign(body, 'new-secret'), null)).toBe(true);
    expect(await verify(body, sign(body, 'old-secret'), null)).toBe(true);
    expect(await verify(body, sign(body, 'other'), null)).toBe(false);
    expect(await verify(body, sign(`${body} `, 'new-secret'), null)).toBe(false);
    expect(await verify(body, '', null)).toBe(false);
    expect(await createVerifier({ shared: 'new-secret' })(body, sign(body, 'old-secret'), null)).toBe(false);
  });

  it('verifies a repository that has its own secret with that alone', async () => {
    const own = new Map([['acme/own', 'acme-own-secret']]);
    const verify = createVerifier({ shared: 'shared-secret', previous: 'old-shared', own: async (repo) => own.get(repo) ?? null });
    const body = '{"repository":{"full_name":"acme/own"}}';
    expect(await verify(body, sign(body, 'acme-own-secret'), 'acme/own')).toBe(true);
    expect(await verify(body, sign(body, 'shared-secret'), 'acme/own')).toBe(false);
    expect(await verify(body, sign(body, 'old-shared'), 'acme/own')).toBe(false);
    expect(await verify(body, sign(body, 'shared-secret'), 'acme/other')).toBe(true);
    expect(await verify(body, sign(body, 'acme-own-secret'), 'acme/other')).toBe(false);
  });
});
