import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileConfig, evaluate, isValidGitRefName, sanitizeTag, validateConfig, type RefEvent } from '../src/rules/index.js';

const DOCKER_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

// Pieces of valid rules; templates that need capture groups only go with the regex that has them.
const exactOrGlob = fc.constantFrom('main', 'develop', '*', 'release/*', 'feature*', 'v*', '{main,master}', '!main', 'release-?', 'v[0-9]*');
// Each regex with the group templates that it can fill.
const regexes = fc.constantFrom(
  { re: '/^v(\\d+)\\.(\\d+)/', groups: ['{\\1}', '{\\1}-{\\2}', 'g{\\2}'] },
  { re: '/^(?<kind>feature|fix)\\/(?<topic>.+)$/i', groups: ['{<kind>}-{<topic>}', 'x{\\1}{sourceref}', '{\\2}'] },
  { re: '/(rc|beta)?(\\d*)$/', groups: ['{\\1}', '{\\1}{\\2}', 'n{\\2}'] },
  { re: '/^release\\/(.*)$/', groups: ['{\\1}', 'r-{\\1}'] },
);
const plainTemplates = fc.constantFrom(
  'latest', 'edge', '{sourceref}', '{sha}', '{sha:7}', '{sha:12}', '{version}', '{major}', '{major}.{minor}', '{major}.{minor}.{patch}',
  '{prerelease}', 'v{version}-{sha:8}', '{sourceref}-{sha:7}', 'pre/{sourceref}', '..{sourceref}', '{prerelease}{major}', '-{sourceref}',
);

const ruleArb = fc.record({
  source: fc.constantFrom('branch', 'tag'),
  how: fc.constantFrom('match', 'regex', 'semver'),
  match: exactOrGlob,
  regex: regexes,
  semver: fc.constantFrom('*', '>=1.0.0', '^2.0.0', '>=1.0.0-rc.0', '1.x || 3.x'),
  tags: fc.array(plainTemplates, { minLength: 1, maxLength: 4 }),
  groupPicks: fc.array(fc.nat(), { maxLength: 2 }),
  context: fc.constantFrom('.', './', 'svc', 'svc/web/'),
  dockerfile: fc.constantFrom('Dockerfile', './Dockerfile', 'docker/Dockerfile'),
  args: fc.dictionary(fc.constantFrom('A', 'B', 'SHA'), fc.constantFrom('x', '{sha}', '{version}', '{sourceref}')),
  paths: fc.option(fc.array(fc.constantFrom('src/**', '!**/*.md', '*.md', 'docs/**', '!docs/**'), { minLength: 1, maxLength: 3 }), { nil: undefined }),
  autobuild: fc.boolean(),
  cache: fc.boolean(),
  deploy: fc.option(fc.constantFrom('staging', 'production'), { nil: undefined }),
});

const configArb = fc.option(fc.array(ruleArb, { maxLength: 8 }), { nil: undefined }).map((rules) => ({
  repository: 'acme/web',
  image: 'localhost:5000/acme/web',
  environments: { staging: { service: 'web-staging' }, production: { service: 'web', promote_from: 'staging' } },
  ...(rules === undefined
    ? {}
    : {
        rules: rules.map((r, i) => {
          const semver = r.how === 'semver' && r.source === 'tag';
          const regex = r.how === 'regex';
          return {
            name: `rule-${i}`,
            source: r.source,
            ...(semver ? { semver: r.semver } : { match: regex ? r.regex.re : r.match }),
            tags: regex ? [...r.tags, ...r.groupPicks.map((n) => r.regex.groups[n % r.regex.groups.length]!)] : r.tags,
            context: r.context,
            dockerfile: r.dockerfile,
            build_args: r.args,
            ...(r.paths ? { paths: r.paths } : {}),
            autobuild: r.autobuild,
            cache: r.cache,
            ...(r.deploy ? { deploy: r.deploy } : {}),
          };
        }),
      }),
}));

const nameChar = fc.constantFrom(...'abcxyzAZ0123456789-_./+@~^:?*[\\ {}éü'.split(''), 'v', 'rc', '1.2.3', '-rc.1', '..', '//', '\u0000');
const nameArb = fc.oneof(
  fc.array(nameChar, { minLength: 0, maxLength: 12 }).map((a) => a.join('')),
  fc.constantFrom('main', 'develop', 'v1.2.3', 'v2.0.8-rc.1', '1.0.0-beta+b1', 'release/1.x', 'feature/login', 'fix/a-b', 'V3.1.4', 'x'.repeat(300)),
  fc.string({ maxLength: 40 }),
);
const refArb = fc.oneof(
  nameArb.map((n) => `refs/heads/${n}`),
  nameArb.map((n) => `refs/tags/${n}`),
  fc.string({ maxLength: 30 }),
  fc.constantFrom('refs/pull/1/head', 'refs/heads/', 'refs/tags/', ''),
);
const eventArb: fc.Arbitrary<RefEvent> = fc.record({
  ref: refArb,
  sha: fc.oneof(fc.stringMatching(/^[0-9a-f]{40}$/), fc.string({ maxLength: 50 })),
  changed: fc.option(fc.array(fc.constantFrom('src/a.ts', 'README.md', 'docs/x.md', 'docs/y.ts', '.github/ci.yml', 'a/b/c.md'), { maxLength: 4 }), { nil: undefined }),
  defaultBranch: fc.option(fc.constantFrom('main', 'trunk', 'feature/x'), { nil: undefined }),
  deleted: fc.option(fc.boolean(), { nil: undefined }),
});

describe('properties of the engine', () => {
  it('generated configs are valid', () => {
    fc.assert(
      fc.property(configArb, (doc) => {
        validateConfig(doc);
      }),
      { numRuns: 300 },
    );
  });

  it('never throws; every tag is a Docker tag; tags are unique across builds; every rule is accounted for once', () => {
    fc.assert(
      fc.property(configArb, eventArb, fc.boolean(), (doc, event, manual) => {
        const compiled = compileConfig(doc);
        const p = evaluate(compiled, event, { manual });
        const all = p.builds.flatMap((b) => b.tags);
        for (const t of all) expect(t).toMatch(DOCKER_TAG);
        expect(new Set(all).size).toBe(all.length);
        for (const b of p.builds) expect(b.tags.length).toBeGreaterThan(0);
        const names = doc.rules ? doc.rules.map((r) => r.name) : ['default'];
        const seen = [...p.builds.flatMap((b) => b.rules), ...p.skipped.map((s) => s.rule)];
        expect(seen.sort()).toEqual([...names].sort());
        if (!isValidGitRefName(event.ref) || event.deleted) expect(p.builds).toEqual([]);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws for malformed events either (fields of any type)', () => {
    fc.assert(
      fc.property(configArb, fc.record({ ref: fc.anything(), sha: fc.anything(), changed: fc.anything(), defaultBranch: fc.anything(), deleted: fc.anything() }), (doc, event) => {
        const p = evaluate(compileConfig(doc), event as unknown as RefEvent);
        for (const t of p.builds.flatMap((b) => b.tags)) expect(t).toMatch(DOCKER_TAG);
      }),
      { numRuns: 500 },
    );
  });

  it('is deterministic: same input, same output, also across compilations', () => {
    fc.assert(
      fc.property(configArb, eventArb, (doc, event) => {
        const a = evaluate(compileConfig(doc), event);
        const compiled = compileConfig(doc);
        const b = evaluate(compiled, event);
        const c = evaluate(compiled, event);
        expect(b).toEqual(a);
        expect(c).toEqual(a);
        // and the stored JSON form compiles to the same behaviour
        expect(evaluate(compileConfig(JSON.parse(JSON.stringify(validateConfig(doc)))), event)).toEqual(a);
      }),
      { numRuns: 500 },
    );
  });

  it('sanitising any text gives a Docker tag or nothing', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300, unit: 'binary' }), (raw) => {
        const t = sanitizeTag(raw);
        expect(t === '' || DOCKER_TAG.test(t)).toBe(true);
        expect(sanitizeTag(t)).toBe(t);
      }),
      { numRuns: 2000 },
    );
  });

  it('validation never throws anything but a RulesError', () => {
    fc.assert(
      fc.property(fc.anything(), configArb, fc.string(), fc.constantFrom('repository', 'image', 'rules', 'environments', 'builder', 'source', 'default_branch'), (junk, doc, s, key) => {
        for (const input of [junk, { ...doc, [key]: junk }, { ...doc, [key]: s }]) {
          try {
            validateConfig(input);
          } catch (err) {
            expect((err as Error).name).toBe('RulesError');
          }
        }
      }),
      { numRuns: 1000 },
    );
  });
});
