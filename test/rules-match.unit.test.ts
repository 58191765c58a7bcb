import { describe, expect, it } from 'vitest';
import { compileConfig, evaluate, isValidGitRefName, type Preview, type RefEvent } from '../src/rules/index.js';

const SHA = '0123456789abcdef0123456789abcdef01234567';
const base = { repository: 'acme/web', image: 'localhost:5000/acme/web' };

function run(rules: unknown[] | undefined, ref: string, more: Partial<RefEvent> = {}, extra: Record<string, unknown> = {}, opts = {}): Preview {
  const doc = rules === undefined ? { ...base, ...extra } : { ...base, ...extra, rules };
  return evaluate(compileConfig(doc), { ref, sha: SHA, ...more }, opts);
}
const built = (p: Preview) => p.builds.flatMap((b) => b.rules);
const reason = (p: Preview, rule: string) => p.skipped.find((s) => s.rule === rule)?.reason;

describe('a ref: branch, tag, or neither', () => {
  it.each([
    ['refs/heads/main', 'branch', 'main'],
    ['refs/heads/feature/login', 'branch', 'feature/login'],
    ['refs/tags/v1.2.3', 'tag', 'v1.2.3'],
    ['refs/tags/release/2024', 'tag', 'release/2024'],
  ])('%s is a %s event with sourceref %s', (ref, source, sourceref) => {
    const p = run([], ref);
    expect(p).toMatchObject({ ref, source, sourceref, sha: SHA, builds: [], skipped: [], warnings: [] });
  });

  it.each([
    ['branch', 'refs/tags/main', 'source is branch, ref is a tag'],
    ['tag', 'refs/heads/main', 'source is tag, ref is a branch'],
  ])('a %s rule skips %s: %s', (source, ref, why) => {
    const p = run([{ name: 'r', source, match: 'main', tags: ['x'] }], ref);
    expect(p.builds).toEqual([]);
    expect(p.skipped).toEqual([{ rule: 'r', reason: why }]);
  });

  it('a deleted ref builds nothing', () => {
    const p = run([{ name: 'r', source: 'branch', match: 'main', tags: ['x'] }], 'refs/heads/main', { deleted: true });
    expect(p.builds).toEqual([]);
    expect(p.skipped).toEqual([{ rule: 'r', reason: 'ref deleted' }]);
  });

  it.each([
    ['refs/pull/1/head', 'ref is neither a branch nor a tag'],
    ['refs/heads/a..b', 'invalid ref'],
    ['refs/heads/x y', 'invalid ref'],
    ['main', 'invalid ref'],
  ])('%s builds nothing (%s)', (ref, why) => {
    const p = run([{ name: 'r', source: 'branch', match: '*', tags: ['x'] }], ref);
    expect(p.builds).toEqual([]);
    expect(p.source).toBeNull();
    expect(p.skipped).toEqual([{ rule: 'r', reason: why }]);
  });
});

describe('match: exact, glob, regex', () => {
  // [match, sourceref, matches?]
  const table: [string, string, boolean][] = [
    // exact
    ['main', 'main', true],
    ['main', 'main2', false],
    ['main', 'Main', false],
    ['release/1.x', 'release/1.x', true],
    ['v1.0', 'v1.0', true],
    // glob: `/` is an ordinary character
    ['*', 'main', true],
    ['*', 'feature/login/deep', true],
    ['*', 'a.b_c-d', true],
    ['release/*', 'release/1.x', true],
    ['release/*', 'release/1.x/hotfix', true],
    ['release/*', 'release', false],
    ['feature*', 'feature/login', true],
    ['release-?', 'release-1', true],
    ['release-?', 'release-10', false],
    ['a?b', 'a/b', true],
    ['v[0-9]*', 'v1.2.3', true],
    ['v[0-9]*', 'vx', false],
    ['a[/]b', 'a/b', true],
    ['{main,master}', 'master', true],
    ['{main,master}', 'develop', false],
    ['!main', 'develop', true],
    ['!main', 'main', false],
    ['*(a|b)', 'abba', true],
    ['**', 'a/b/c', true],
    ['feature/**', 'feature/a/b', true],
    ['*/*', 'main', false],
    ['*/*', 'a/b', true],
    ['[!a]*', 'bcd', true],
    ['[!a]*', 'abc', false],
    ['release-{1..3}', 'release-2', true],
    ['release-{1..3}', 'release-4', false],
    ['@(main|dev)', 'main', false], // no glob character: an exact name
    // none of * ? [ ] { } ! : an exact name, even with other pattern characters
    ['+(a|b)', 'abba', false],
    ['+(a|b)', '+(a|b)', true],
    // regex: JavaScript RegExp#test, anchored only where it says so
    ['/^v([0-9.]+)$/', 'v1.2.3', true],
    ['/^v([0-9.]+)$/', 'xv1.2', false],
    ['/^v([0-9.]+)$/i', 'V1.2', true],
    ['/^v([0-9.]+)$/', 'V1.2', false],
    ['/rc/', 'v1.0-rc.1', true],
    ['/rc/', 'v1.0', false],
    ['/^release\\/(.*)$/', 'release/2.0', true],
    ['/^release/(.*)$/', 'release/2.0', true],
    ['/^main$/s', 'main', true],
    ['/^main$/ms', 'main', true],
    ['/^MAIN$/imsu', 'main', true],
    ['/^\\p{L}+$/u', 'main', true],
    ['//', 'anything', true],
  ];
  it.each(table)('match %j against %j → %s', (match, name, expected) => {
    const p = run([{ name: 'r', source: 'branch', match, tags: ['x'] }], `refs/heads/${name}`);
    expect(built(p)).toEqual(expected ? ['r'] : []);
    if (!expected) expect(reason(p, 'r')).toBe('no match');
  });
});

describe('semver', () => {
  const table: [string, string, string | null][] = [
    // [range, tag, null = builds | skip reason]
    ['>=1.0.0', 'v1.2.3', null],
    ['>=1.0.0', '1.2.3', null],
    ['>=1.0.0', 'V1.2.3', null],
    ['>=1.0.0', 'v0.9.0', 'semver range not satisfied'],
    ['>=1.0.0', 'vv1.2.3', 'not a SemVer version'],
    ['>=1.0.0', 'v1.2', 'not a SemVer version'],
    ['>=1.0.0', 'v01.2.3', 'not a SemVer version'],
    ['>=1.0.0', '=1.2.3', 'not a SemVer version'],
    ['>=1.0.0', 'release', 'not a SemVer version'],
    ['>=1.0.0', 'v1.2.3+build.5', null],
    // pre-releases only where the range names them (npm)
    ['>=1.0.0', 'v2.0.0-rc.1', 'semver range not satisfied'],
    ['>=2.0.0-rc.0', 'v2.0.0-rc.1', null],
    ['>=2.0.0-rc.0', 'v2.1.0-rc.1', 'semver range not satisfied'],
    ['*', 'v0.0.1', null],
    ['*', 'v1.0.0-alpha', 'semver range not satisfied'],
    ['^1.2.0', 'v1.9.9', null],
    ['^1.2.0', 'v2.0.0', 'semver range not satisfied'],
    ['1.x || >=3.0.0', 'v3.1.0', null],
  ];
  it.each(table)('semver %j on tag %j → %s', (range, tag, why) => {
    const p = run([{ name: 'r', source: 'tag', semver: range, tags: ['x'] }], `refs/tags/${tag}`);
    if (why === null) expect(built(p)).toEqual(['r']);
    else expect(p.skipped).toEqual([{ rule: 'r', reason: why }]);
  });

  it('with match and semver both must hold', () => {
    const rules = [{ name: 'r', source: 'tag', match: 'v*', semver: '>=1.0.0', tags: ['x'] }];
    expect(built(run(rules, 'refs/tags/v1.0.0'))).toEqual(['r']);
    expect(reason(run(rules, 'refs/tags/1.0.0'), 'r')).toBe('no match');
    expect(reason(run(rules, 'refs/tags/v0.1.0'), 'r')).toBe('semver range not satisfied');
  });
});

describe('paths', () => {
  const rule = (paths: string[]) => [{ name: 'r', source: 'branch', match: 'main', tags: ['x'], paths }];
  const table: [string[], string[] | null, boolean][] = [
    [['services/web/**'], ['services/web/src/app.ts'], true],
    [['services/web/**'], ['services/api/src/app.ts'], false],
    [['services/web/**'], ['README.md', 'services/web/a'], true],
    [['*.md'], ['README.md'], true],
    [['*.md'], ['docs/guide.md'], false],
    [['**/*.md'], ['docs/guide.md'], true],
    [['**/*.md'], ['README.md'], true],
    [['**'], ['.github/workflows/ci.yml'], true],
    [['.github/**'], ['.github/workflows/ci.yml'], true],
    [['services/web/**', '!**/*.md'], ['services/web/README.md'], false],
    [['services/web/**', '!**/*.md'], ['services/web/README.md', 'services/web/a.ts'], true],
    // the negative glob only vetoes the file it matches
    [['services/web/**', '!**/*.md'], ['services/web/README.md', 'docs/a.ts'], false],
    // only negative globs: as if ** came first
    [['!**/*.md'], ['docs/a.md'], false],
    [['!**/*.md'], ['docs/a.md', 'src/a.ts'], true],
    [['!docs/**', '!*.md'], ['README.md', 'docs/x'], false],
    // no file lists: the filter passes
    [['services/web/**'], null, true],
    [['services/web/**'], [], true],
  ];
  it.each(table)('paths %j with changed %j → %s', (paths, changed, expected) => {
    const p = run(rule(paths), 'refs/heads/main', { changed });
    expect(built(p)).toEqual(expected ? ['r'] : []);
    if (!expected) expect(reason(p, 'r')).toBe('paths: no changed file matches');
  });

  it('a tag push passes the filter', () => {
    const p = run([{ name: 'r', source: 'tag', match: '*', tags: ['x'], paths: ['nothing/**'] }], 'refs/tags/v1', { changed: ['a.ts'] });
    expect(built(p)).toEqual(['r']);
  });
});

describe('autobuild', () => {
  const rules = [
    { name: 'auto', source: 'branch', match: 'main', tags: ['a'] },
    { name: 'manual', source: 'branch', match: 'main', tags: ['m'], autobuild: false },
  ];
  it('autobuild: false never matches a webhook or preview', () => {
    const p = run(rules, 'refs/heads/main');
    expect(built(p)).toEqual(['auto']);
    expect(p.skipped).toEqual([{ rule: 'manual', reason: 'autobuild is false' }]);
  });
  it('a build by hand runs it', () => {
    const p = run(rules, 'refs/heads/main', {}, {}, { manual: true });
    expect(p.builds).toMatchObject([{ rules: ['auto', 'manual'], tags: ['a', 'm'] }]);
  });
  it('a build by hand of one rule runs only that rule', () => {
    const p = run(rules, 'refs/heads/main', {}, {}, { manual: true, rule: 'manual' });
    expect(built(p)).toEqual(['manual']);
    expect(p.skipped).toEqual([{ rule: 'auto', reason: 'not the requested rule' }]);
  });
  it('an unknown rule name is a RulesError at path rule', () => {
    expect(() => run(rules, 'refs/heads/main', {}, {}, { manual: true, rule: 'nope' })).toThrowError(
      expect.objectContaining({ problems: [expect.objectContaining({ path: 'rule' })] }),
    );
  });
  it('a manual build still needs the ref to match', () => {
    const p = run(rules, 'refs/heads/dev', {}, {}, { manual: true });
    expect(p.builds).toEqual([]);
  });
});

describe('the default rule', () => {
  it('no rules key: branch main, tag latest', () => {
    const p = run(undefined, 'refs/heads/main');
    expect(p.builds).toEqual([{ rules: ['default'], tags: ['latest'], context: '.', dockerfile: 'Dockerfile', build_args: {}, cache: false, deploy: [] }]);
    expect(run(undefined, 'refs/heads/dev').skipped).toEqual([{ rule: 'default', reason: 'no match' }]);
    expect(run(undefined, 'refs/tags/main').skipped).toEqual([{ rule: 'default', reason: 'source is branch, ref is a tag' }]);
  });
  it('uses the config default_branch', () => {
    expect(built(run(undefined, 'refs/heads/trunk', {}, { default_branch: 'trunk' }))).toEqual(['default']);
    expect(built(run(undefined, 'refs/heads/main', {}, { default_branch: 'trunk' }))).toEqual([]);
  });
  it("the webhook's default branch wins", () => {
    expect(built(run(undefined, 'refs/heads/develop', { defaultBranch: 'develop' }, { default_branch: 'trunk' }))).toEqual(['default']);
    expect(built(run(undefined, 'refs/heads/trunk', { defaultBranch: 'develop' }, { default_branch: 'trunk' }))).toEqual([]);
  });
  it('an empty list builds nothing', () => {
    expect(run([], 'refs/heads/main')).toMatchObject({ builds: [], skipped: [] });
  });
});

describe('isValidGitRefName (git check-ref-format)', () => {
  const table: [string, boolean][] = [
    ['refs/heads/main', true],
    ['refs/heads/feature/login', true],
    ['refs/tags/v1.2.3', true],
    ['refs/heads/a.b', true],
    ['refs/heads/a@b', true],
    ['refs/heads/ünï', true],
    ['main', false], // one level
    ['', false],
    ['@', false],
    ['refs/heads/', false],
    ['/refs/heads/x', false],
    ['refs//heads/x', false],
    ['refs/heads/a..b', false],
    ['refs/heads/.hidden', false],
    ['refs/heads/a/.b', false],
    ['refs/heads/x.lock', false],
    ['refs/heads/x.lock/y', false],
    ['refs/heads/x.', false],
    ['refs/heads/a@{b', false],
    ['refs/heads/a b', false],
    ['refs/heads/a\tb', false],
    ['refs/heads/a\u007fb', false],
    ['refs/heads/a~1', false],
    ['refs/heads/a^', false],
    ['refs/heads/a:b', false],
    ['refs/heads/a?', false],
    ['refs/heads/a*', false],
    ['refs/heads/a[b', false],
    ['refs/heads/a\\b', false],
  ];
  it.each(table)('%j → %s', (ref, valid) => {
    expect(isValidGitRefName(ref)).toBe(valid);
  });
});
