/**
 * npm run bench:rules — how many ref events per second the rule engine evaluates.
 *
 * A 20-rule configuration (exact names, globs, regexes with capture groups, semver ranges,
 * path filters, build args, merging) is compiled once and evaluated against a mix of 1,000 refs
 * (branches, SemVer tags, pre-releases, refs that match nothing), on one core. The baseline, in
 * the same run, is what compiling buys: validating and compiling the same config on every call.
 * Rates are per second of this process's CPU time (one core); BENCH_SECONDS sets the budget.
 * `unique_names_evals_per_s` evaluates 20,000 events whose branch names and paths never repeat,
 * so the globs' memo of earlier answers never helps.
 * Output: one JSON document on stdout.
 */
import { compileConfig, evaluate, type RefEvent } from '../src/rules/index.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);

const config = {
  repository: 'acme/platform',
  image: 'localhost:5000/acme/platform',
  environments: { staging: { service: 'acme-staging' }, production: { service: 'acme', promote_from: 'staging' } },
  rules: [
    { name: 'edge', source: 'branch', match: 'main', tags: ['edge', '{sourceref}-{sha:7}'], build_args: { GIT_SHA: '{sha}' }, deploy: 'staging' },
    { name: 'develop', source: 'branch', match: 'develop', tags: ['dev', 'dev-{sha:7}'] },
    { name: 'features', source: 'branch', match: 'feature/*', tags: ['{sourceref}'] },
    { name: 'fixes', source: 'branch', match: '{fix,hotfix}/*', tags: ['{sourceref}', '{sourceref}-{sha:7}'] },
    { name: 'release-branches', source: 'branch', match: '/^release-(\\d+)\\.(\\d+)$/', tags: ['{\\1}.{\\2}-rc', 'rc-{sha:8}'] },
    { name: 'web', source: 'branch', match: 'main', context: 'services/web', tags: ['web-edge'], paths: ['services/web/**', 'libs/**', '!**/*.md'] },
    { name: 'api', source: 'branch', match: 'main', context: 'services/api', tags: ['api-edge'], paths: ['services/api/**', 'libs/**', '!**/*.md'] },
    { name: 'worker', source: 'branch', match: 'main', context: 'services/worker', tags: ['worker-edge'], paths: ['services/worker/**'] },
    { name: 'docs', source: 'branch', match: '*', context: 'docs', tags: ['docs-{sourceref}'], paths: ['docs/**'] },
    { name: 'renovate', source: 'branch', match: 'renovate/*', tags: ['deps-{sha:7}'], autobuild: false },
    { name: 'experiments', source: 'branch', match: '/^exp\\/(?<who>[a-z]+)\\/(?<what>.+)$/i', tags: ['exp-{<who>}-{<what>}'] },
    { name: 'releases', source: 'tag', semver: '>=1.0.0', tags: ['{version}', '{major}.{minor}', '{major}', 'latest'], build_args: { VERSION: '{version}' }, deploy: 'production' },
    { name: 'pre-releases', source: 'tag', match: '/^v\\d+\\.\\d+\\.\\d+-/', tags: ['{version}', 'next'], build_args: { VERSION: '{version}' } },
    { name: 'legacy', source: 'tag', semver: '<1.0.0', tags: ['legacy-{version}'] },
    { name: 'lts', source: 'tag', semver: '^2.0.0 || ^4.0.0', tags: ['lts-{major}'], context: 'lts' },
    { name: 'web-tags', source: 'tag', match: '/^web-v(\\d+\\.\\d+\\.\\d+)$/', context: 'services/web', tags: ['web-{\\1}', 'web-latest'] },
    { name: 'api-tags', source: 'tag', match: '/^api-v(\\d+\\.\\d+\\.\\d+)$/', context: 'services/api', tags: ['api-{\\1}', 'api-latest'] },
    { name: 'nightly', source: 'tag', match: 'nightly-*', tags: ['nightly', '{sourceref}'], cache: true },
    { name: 'any-tag', source: 'tag', match: '*', tags: ['tag-{sourceref}'] },
    { name: 'sha-all', source: 'branch', match: '*', tags: ['sha-{sha}'], cache: true },
  ],
};

/** A deterministic mix of `count` ref events; `unique` makes every branch name and path distinct. */
function refMix(count = 1000, unique = false): RefEvent[] {
  let seed = 42;
  let serial = 0;
  const u = () => (unique ? `-u${serial++}` : '');
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
  const hex = () => Array.from({ length: 40 }, () => '0123456789abcdef'[rand(16)]).join('');
  const files = ['services/web/src/app', 'services/api/main', 'libs/util/x', 'docs/guide.md', 'README.md', 'services/worker/job'].map((f) => () => `${f}${u()}.ts`);
  const kinds: (() => RefEvent)[] = [
    () => ({ ref: 'refs/heads/main', sha: hex(), changed: [files[rand(6)]!(), files[rand(6)]!()] }),
    () => ({ ref: 'refs/heads/develop', sha: hex() }),
    () => ({ ref: `refs/heads/feature/login-${rand(100)}${u()}`, sha: hex() }),
    () => ({ ref: `refs/heads/hotfix/bug-${rand(100)}${u()}`, sha: hex() }),
    () => ({ ref: `refs/heads/release-${rand(5)}.${rand(10)}`, sha: hex() }),
    () => ({ ref: `refs/heads/exp/Ann/idea-${rand(9)}${u()}`, sha: hex() }),
    () => ({ ref: `refs/heads/renovate/lib-${rand(50)}${u()}`, sha: hex() }),
    () => ({ ref: `refs/tags/v${rand(6)}.${rand(20)}.${rand(20)}`, sha: hex() }),
    () => ({ ref: `refs/tags/v${rand(6)}.${rand(20)}.0-rc.${rand(5)}`, sha: hex() }),
    () => ({ ref: `refs/tags/web-v1.${rand(9)}.${rand(9)}`, sha: hex() }),
    () => ({ ref: `refs/tags/nightly-2026${rand(12)}${u()}`, sha: hex() }),
    () => ({ ref: 'refs/pull/12/head', sha: hex() }),
  ];
  return Array.from({ length: count }, () => kinds[rand(kinds.length)]!());
}

/**
 * Evaluations per second of `evalOne` over the mix, for about SECONDS of this process's CPU time
 * (so that other work on a shared machine does not count against it); wall-clock rate alongside.
 */
function measure(events: RefEvent[], evalOne: (e: RefEvent) => unknown, seconds: number): { cpu: number; wall: number } {
  for (const e of events) evalOne(e); // warm-up: JIT and lazily built state
  let evals = 0;
  const cpu0 = process.cpuUsage();
  const wall0 = process.hrtime.bigint();
  const cpuSeconds = () => {
    const d = process.cpuUsage(cpu0);
    return (d.user + d.system) / 1e6;
  };
  while (cpuSeconds() < seconds) {
    for (const e of events) evalOne(e);
    evals += events.length;
  }
  const cpu = cpuSeconds();
  const wall = Number(process.hrtime.bigint() - wall0) / 1e9;
  return { cpu: Math.round(evals / cpu), wall: Math.round(evals / wall) };
}

const events = refMix();
const compiled = compileConfig(config);
let builds = 0;
let tags = 0;
for (const e of events) {
  const p = evaluate(compiled, e);
  builds += p.builds.length;
  tags += p.builds.reduce((n, b) => n + b.tags.length, 0);
}
const fast = measure(events, (e) => evaluate(compiled, e), SECONDS);
const baseline = measure(events, (e) => evaluate(compileConfig(config), e), SECONDS / 2);
// Globs remember their answers for names seen before; here no name repeats within 20,000 events.
const cold = measure(refMix(20_000, true), (e) => evaluate(compiled, e), SECONDS / 2);

process.stdout.write(
  `${JSON.stringify(
    {
      bench: 'rules',
      rules: config.rules.length,
      refs: events.length,
      evals_per_s: fast.cpu,
      us_per_eval: Math.round((1e6 / fast.cpu) * 100) / 100,
      wall_evals_per_s: fast.wall,
      unique_names_evals_per_s: cold.cpu,
      baseline: 'validate + compile the config on every call',
      baseline_evals_per_s: baseline.cpu,
      speedup_vs_baseline: Math.round((fast.cpu / baseline.cpu) * 10) / 10,
      builds_per_eval: Math.round((builds / events.length) * 100) / 100,
      tags_per_eval: Math.round((tags / events.length) * 100) / 100,
      target_evals_per_s: 100_000,
      node: process.version,
    },
    null,
    2,
  )}\n`,
);
