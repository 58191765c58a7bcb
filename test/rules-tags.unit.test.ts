import { describe, expect, it } from 'vitest';
import { compileConfig, evaluate, sanitizeTag, type Preview, type RefEvent } from '../src/rules/index.js';

const SHA = '0123456789abcdef0123456789abcdef01234567';
const base = { repository: 'acme/web', image: 'localhost:5000/acme/web' };

function run(rules: unknown[], ref: string, more: Partial<RefEvent> = {}, extra: Record<string, unknown> = {}): Preview {
  return evaluate(compileConfig({ ...base, ...extra, rules }), { ref, sha: SHA, ...more });
}

/** The tags one rule gives for one ref, and the warnings. */
function tagsOf(rule: Record<string, unknown>, ref: string): { tags: string[]; warnings: number; skipped: string | undefined } {
  const p = run([{ name: 'r', source: ref.startsWith('refs/tags/') ? 'tag' : 'branch', ...rule }], ref);
  return { tags: p.builds[0]?.tags ?? [], warnings: p.warnings.length, skipped: p.skipped[0]?.reason };
}

describe('template variables', () => {
  // [rule fields, ref, expected tags, expected warning count]
  const table: [Record<string, unknown>, string, string[], number][] = [
    [{ match: '*', tags: ['{sourceref}'] }, 'refs/heads/main', ['main'], 0],
    [{ match: '*', tags: ['{sourceref}'] }, 'refs/heads/feature/login', ['feature-login'], 0],
    [{ match: '*', tags: ['{sourceref}'] }, 'refs/tags/v1.2.3', ['v1.2.3'], 0],
    [{ match: '*', tags: ['{sha}'] }, 'refs/heads/main', [SHA], 0],
    [{ match: '*', tags: ['{sha:7}'] }, 'refs/heads/main', ['0123456'], 0],
    [{ match: '*', tags: ['{sha:4}', '{sha:40}'] }, 'refs/heads/main', ['0123', SHA], 0],
    [{ match: '*', tags: ['{sourceref}-{sha:7}'] }, 'refs/heads/main', ['main-0123456'], 0],
    [{ match: '/^v([0-9]+)\\.([0-9]+)/', tags: ['{\\1}', '{\\1}.{\\2}', 'x{\\2}y'] }, 'refs/tags/v3.14.1', ['3', '3.14', 'x14y'], 0],
    // a group that did not take part is empty
    [{ match: '/^v(\\d+)(-beta)?$/', tags: ['{\\1}{\\2}', 'b{\\2}'] }, 'refs/tags/v7', ['7', 'b'], 0],
    [{ match: '/^v(?<ver>[0-9.]+)$/', tags: ['{<ver>}', 'v{\\1}'] }, 'refs/tags/v1.2', ['1.2', 'v1.2'], 0],
    [{ match: '/^v(?<ver>[0-9.]+)(?<pre>-.*)?$/', tags: ['{<ver>}{<pre>}'] }, 'refs/tags/v1.2', ['1.2'], 0],
    [{ match: '/^(?<size>.+)$/u', tags: ['s-{<size>}'] }, 'refs/heads/xl', ['s-xl'], 0],
    [{ match: '/^(?P<size>.+)$/', tags: ['s-{<size>}'] }, 'refs/heads/xl', ['s-xl'], 0],
    [{ match: '*', tags: ['{version}', '{major}', '{minor}', '{patch}'] }, 'refs/tags/v1.2.3', ['1.2.3', '1', '2', '3'], 0],
    [{ match: '*', tags: ['{version}', 'p{prerelease}'] }, 'refs/tags/1.2.3', ['1.2.3', 'p'], 0],
    [{ match: '*', tags: ['{version}', '{prerelease}'] }, 'refs/tags/v1.2.3-rc.1', ['1.2.3-rc.1', 'rc.1'], 0],
    // {version} drops build metadata
    [{ match: '*', tags: ['{version}'] }, 'refs/tags/v1.2.3-rc.1+build.7', ['1.2.3-rc.1'], 0],
    [{ match: '*', tags: ['{version}'] }, 'refs/tags/V2.0.0+meta', ['2.0.0'], 0],
    // semver variables exist for branch events too
    [{ match: '*', tags: ['{major}.{minor}'] }, 'refs/heads/v1.4.0', ['1.4'], 0],
    // and not for a name that is not SemVer: skipped with a warning, other tags stay
    [{ match: '*', tags: ['{version}', 'edge'] }, 'refs/heads/main', ['edge'], 1],
    [{ match: '*', tags: ['{major}', '{minor}', 'x'] }, 'refs/tags/v1.2', ['x'], 2],
    [{ match: '*', tags: ['{prerelease}x', 'y'] }, 'refs/tags/vv1.2.3', ['y'], 1],
  ];
  it.each(table)('%j on %s → %j (%i warnings)', (rule, ref, tags, warnings) => {
    expect(tagsOf(rule, ref)).toMatchObject({ tags, warnings });
  });

  it('a build_args value whose variable has no value is left out, with a warning', () => {
    const p = run([{ name: 'r', source: 'branch', match: '*', tags: ['x'], build_args: { A: '{version}', B: '{sha:8}', C: 'plain {sourceref}' } }], 'refs/heads/feature/x');
    expect(p.builds[0]!.build_args).toEqual({ B: '01234567', C: 'plain feature/x' }); // not sanitised
    expect(p.warnings).toHaveLength(1);
    expect(p.warnings[0]).toContain('A');
  });

  it('build args are templates too, rendered from the regex and SemVer', () => {
    const p = run([{ name: 'r', source: 'tag', match: '/^v(.*)$/', tags: ['x'], build_args: { V: '{\\1}', M: '{major}', N: 8080, F: false } }], 'refs/tags/v1.2.3-rc.1');
    expect(p.builds[0]!.build_args).toEqual({ V: '1.2.3-rc.1', M: '1', N: '8080', F: 'false' });
  });
});

describe('sanitising', () => {
  const table: [string, string][] = [
    ['feature/login', 'feature-login'],
    ['a//b', 'a-b'],
    ['a b\tc', 'a-b-c'],
    ['ünïcødé', 'n-c-d-'],
    ['x@#$%^&y', 'x-y'],
    ['keep_._-this', 'keep_._-this'],
    ['.hidden', 'hidden'],
    ['-dash', 'dash'],
    ['.-.-x', 'x'],
    ['//x', 'x'],
    ['_under', '_under'],
    ['...', ''],
    ['/', ''],
    ['a'.repeat(200), 'a'.repeat(128)],
    [`-${'b'.repeat(130)}`, 'b'.repeat(128)],
  ];
  it.each(table)('%j → %j', (raw, tag) => {
    expect(sanitizeTag(raw)).toBe(tag);
  });

  it('applies to the whole rendered tag, literal text and values', () => {
    expect(tagsOf({ match: '*', tags: ['pre/{sourceref}'] }, 'refs/heads/feat/a+b').tags).toEqual(['pre-feat-a-b']);
    expect(tagsOf({ match: '*', tags: ['{sourceref}.x'] }, 'refs/heads/-lead').tags).toEqual(['lead.x']);
  });

  it('a long branch name is cut to 128 characters', () => {
    const name = `feature/${'x'.repeat(200)}`;
    const { tags } = tagsOf({ match: '*', tags: ['{sourceref}'] }, `refs/heads/${name}`);
    expect(tags).toEqual([`feature-${'x'.repeat(120)}`]);
  });

  it('a tag empty after sanitising is skipped with a warning', () => {
    const p = run([{ name: 'r', source: 'tag', match: '/^(_?)v/', tags: ['{\\1}', 'ok'] }], 'refs/tags/v1');
    expect(p.builds[0]!.tags).toEqual(['ok']);
    expect(p.warnings).toHaveLength(1);
  });

  it('a rule whose tags are all skipped contributes no build: no tags', () => {
    const p = run([{ name: 'r', source: 'tag', match: '/^(_?)v/', tags: ['{\\1}', '{major}'] }], 'refs/tags/v1');
    expect(p.builds).toEqual([]);
    expect(p.skipped).toEqual([{ rule: 'r', reason: 'no tags' }]);
    expect(p.warnings).toHaveLength(2);
  });
});

describe('a pre-release never moves a release tag', () => {
  const releases = { match: '*', tags: ['{version}', '{major}.{minor}', '{major}', 'latest'] };
  it('v1.2.3 gets every tag', () => {
    expect(tagsOf(releases, 'refs/tags/v1.2.3')).toMatchObject({ tags: ['1.2.3', '1.2', '1', 'latest'], warnings: 0 });
  });
  it('v2.0.8-rc.1 yields 2.0.8-rc.1, never 2.0.8, 2.0, 2 or latest (no warnings)', () => {
    expect(tagsOf(releases, 'refs/tags/v2.0.8-rc.1')).toMatchObject({ tags: ['2.0.8-rc.1'], warnings: 0 });
  });
  const table: [string, boolean][] = [
    // [template, kept on a pre-release]
    ['latest', false],
    ['{major}', false],
    ['{minor}', false],
    ['{patch}', false],
    ['{major}.{minor}.{patch}', false],
    ['v{major}-{sourceref}', false],
    ['{major}-{\\1}', false],
    ['{major}.{minor}-{prerelease}', true],
    ['{major}-{version}', true],
    ['{major}-{sha:7}', true],
    ['{major}-{sha}', true],
    ['{version}', true],
    ['{sourceref}', true],
    ['edge', true],
    ['latest-rc', true],
  ];
  it.each(table)('template %j kept on a pre-release: %s', (template, kept) => {
    const { tags, skipped } = tagsOf({ match: '/^v(.*)$/', tags: [template] }, 'refs/tags/v2.0.8-rc.1');
    if (kept) expect(tags).toHaveLength(1);
    else expect(skipped).toBe('no tags');
  });
  it('applies to branch names that are pre-release versions, and to latest in any rule', () => {
    const p = run([{ name: 'a', source: 'branch', match: '*', tags: ['latest', '{major}', 'x'] }], 'refs/heads/v1.0.0-beta');
    expect(p.builds[0]!.tags).toEqual(['x']);
    expect(p.warnings).toEqual([]);
  });
  it('does not apply to build args', () => {
    const p = run([{ name: 'a', source: 'tag', match: '*', tags: ['{version}'], build_args: { MAJOR: '{major}' } }], 'refs/tags/v3.0.0-rc.2');
    expect(p.builds[0]!.build_args).toEqual({ MAJOR: '3' });
  });
});

describe('from matches to builds', () => {
  it('a repeated tag is kept once, at its first place', () => {
    expect(tagsOf({ match: '*', tags: ['a', '{sourceref}', 'b', 'main', 'a'] }, 'refs/heads/main').tags).toEqual(['a', 'main', 'b']);
    // equal only after sanitising
    expect(tagsOf({ match: '*', tags: ['{sourceref}', 'feat-x'] }, 'refs/heads/feat/x')).toMatchObject({ tags: ['feat-x'], warnings: 0 });
  });

  it('rules with identical inputs merge: union of tags, all rules, each deploy once, in rule order', () => {
    const p = run(
      [
        { name: 'edge', source: 'branch', match: 'main', tags: ['edge', 'shared'], deploy: 'staging' },
        { name: 'other', source: 'branch', match: 'main', tags: ['x'], context: 'svc' },
        { name: 'sha', source: 'branch', match: '*', tags: ['{sha:7}', 'shared'], context: './', dockerfile: './Dockerfile', deploy: 'qa' },
        { name: 'again', source: 'branch', match: '/^ma/', tags: ['edge', 'z'], deploy: 'staging' },
      ],
      'refs/heads/main',
      {},
      { environments: { staging: { service: 's1' }, qa: { service: 's2' } } },
    );
    expect(p.builds).toEqual([
      { rules: ['edge', 'sha', 'again'], tags: ['edge', 'shared', '0123456', 'z'], context: '.', dockerfile: 'Dockerfile', build_args: {}, cache: false, deploy: ['staging', 'qa'] },
      { rules: ['other'], tags: ['x'], context: 'svc', dockerfile: 'Dockerfile', build_args: {}, cache: false, deploy: [] },
    ]);
    expect(p.warnings).toEqual([]);
  });

  it.each([
    ['context', { context: 'a' }],
    ['dockerfile', { dockerfile: 'Dockerfile.prod' }],
    ['cache', { cache: true }],
    ['build_args', { build_args: { X: '1' } }],
    ['target', { target: 'runtime' }],
  ])('a different %s keeps builds apart', (_field, diff) => {
    const p = run(
      [
        { name: 'a', source: 'branch', match: '*', tags: ['a'] },
        { name: 'b', source: 'branch', match: '*', tags: ['b'], ...diff },
      ],
      'refs/heads/main',
    );
    expect(p.builds.map((b) => b.rules)).toEqual([['a'], ['b']]);
  });

  it('a target is carried to the build, and equal targets merge', () => {
    const p = run(
      [
        { name: 'a', source: 'branch', match: '*', tags: ['a'], target: 'runtime' },
        { name: 'b', source: 'branch', match: '*', tags: ['b'], target: 'runtime' },
        { name: 'c', source: 'branch', match: '*', tags: ['c'], target: 'test' },
      ],
      'refs/heads/main',
    );
    expect(p.builds.map((b) => [b.rules, b.target])).toEqual([
      [['a', 'b'], 'runtime'],
      [['c'], 'test'],
    ]);
  });

  it('build args compare rendered, whatever their order', () => {
    const p = run(
      [
        { name: 'a', source: 'branch', match: '*', tags: ['a'], build_args: { X: '{sourceref}', Y: 'y' } },
        { name: 'b', source: 'branch', match: '*', tags: ['b'], build_args: { Y: 'y', X: 'main' } },
        { name: 'c', source: 'branch', match: '*', tags: ['c'], build_args: { X: 'main', Y: 'y', Z: '{version}' } }, // Z left out
      ],
      'refs/heads/main',
    );
    expect(p.builds.map((b) => b.rules)).toEqual([['a', 'b', 'c']]);
    expect(p.warnings).toHaveLength(1);
  });

  it('a tag an earlier build carries is dropped from the later build, with a warning', () => {
    const p = run(
      [
        { name: 'a', source: 'branch', match: '*', tags: ['latest', 'a'] },
        { name: 'b', source: 'branch', match: '*', tags: ['b', 'latest'], context: 'b' },
      ],
      'refs/heads/main',
    );
    expect(p.builds.map((b) => [b.rules, b.tags])).toEqual([
      [['a'], ['latest', 'a']],
      [['b'], ['b']],
    ]);
    expect(p.warnings).toHaveLength(1);
    expect(p.warnings[0]).toContain('latest');
  });

  it('a build left with no tags is not built; its rules are skipped with no tags, in file order', () => {
    const p = run(
      [
        { name: 'first', source: 'branch', match: '*', tags: ['latest'] },
        { name: 'dup1', source: 'branch', match: '*', tags: ['latest'], context: 'b' },
        { name: 'nomatch', source: 'branch', match: 'dev', tags: ['x'] },
        { name: 'dup2', source: 'branch', match: '*', tags: ['latest'], context: 'b' },
      ],
      'refs/heads/main',
    );
    expect(p.builds.map((b) => b.rules)).toEqual([['first']]);
    expect(p.skipped).toEqual([
      { rule: 'dup1', reason: 'no tags' },
      { rule: 'nomatch', reason: 'no match' },
      { rule: 'dup2', reason: 'no tags' },
    ]);
    expect(p.warnings).toHaveLength(1);
  });

  it('builds come in the order of their first rule', () => {
    const p = run(
      [
        { name: 'x', source: 'branch', match: '*', tags: ['x'], context: 'x' },
        { name: 'y', source: 'branch', match: '*', tags: ['y'], context: 'y' },
        { name: 'x2', source: 'branch', match: '*', tags: ['x2'], context: 'x' },
      ],
      'refs/heads/main',
    );
    expect(p.builds.map((b) => b.rules)).toEqual([['x', 'x2'], ['y']]);
  });

  it('the preview document of the spec', () => {
    const p = run(
      [
        { name: 'edge', source: 'branch', match: 'main', tags: ['edge', '{sourceref}-{sha:7}'] },
        { name: 'releases', source: 'tag', semver: '>=1.0.0', tags: ['{version}', '{major}.{minor}', '{major}', 'latest'] },
      ],
      'refs/tags/v1.2.3',
    );
    expect(p).toEqual({
      ref: 'refs/tags/v1.2.3',
      source: 'tag',
      sourceref: 'v1.2.3',
      sha: SHA,
      builds: [{ rules: ['releases'], tags: ['1.2.3', '1.2', '1', 'latest'], context: '.', dockerfile: 'Dockerfile', build_args: {}, cache: false, deploy: [] }],
      skipped: [{ rule: 'edge', reason: 'source is branch, ref is a tag' }],
      warnings: [],
    });
  });
});
