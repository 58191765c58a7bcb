import { defaultRule, type CompiledConfig, type CompiledRule } from './compile.js';
import { RulesError } from './errors.js';
import { testMatch, type Captures } from './match.js';
import { pathsPass } from './paths.js';
import { isValidGitRefName, parseRef } from './refname.js';
import { sanitizeTag } from './tag.js';
import { missingVariable, renderTemplate, type TemplateValues } from './template.js';
import type { EvaluateOptions, PlannedBuild, Preview, RefEvent } from './types.js';
import { versionOf, type RefVersion } from './version.js';

/** Skip reasons, as people read them in previews and build records. */
export const SKIP_REASONS = {
  deleted: 'ref deleted',
  invalidRef: 'invalid ref',
  otherRef: 'ref is neither a branch nor a tag',
  notRequested: 'not the requested rule',
  noMatch: 'no match',
  notSemver: 'not a SemVer version',
  rangeNotSatisfied: 'semver range not satisfied',
  paths: 'paths: no changed file matches',
  autobuild: 'autobuild is false',
  noTags: 'no tags',
} as const;

interface Contribution {
  rule: CompiledRule;
  tags: string[];
  buildArgs: Record<string, string>;
}

interface Merged {
  build: PlannedBuild;
  indexes: number[];
}

/**
 * What one ref event builds under a compiled configuration. Pure and total: never throws for
 * any event (only for an unknown `opts.rule`), the same input always gives the same output.
 * The webhook path calls it on every delivery, so the rule loop allocates little and compiles nothing.
 */
export function evaluate(compiled: CompiledConfig, event: RefEvent, opts: EvaluateOptions = {}): Preview {
  const ref = typeof event.ref === 'string' ? event.ref : '';
  const sha = typeof event.sha === 'string' ? event.sha : '';
  const parsed = parseRef(ref);
  const webhookDefault = typeof event.defaultBranch === 'string' && event.defaultBranch !== '' ? event.defaultBranch : null;
  const rules = compiled.rules ?? [defaultRule(compiled, webhookDefault ?? compiled.config.default_branch)];
  const only = opts.rule;
  if (only !== undefined && !rules.some((r) => r.name === only)) {
    const names = rules.map((r) => r.name);
    throw new RulesError([
      { path: 'rule', message: `unknown rule ${JSON.stringify(only)} (${names.length ? `rules: ${names.join(', ')}` : 'the config has no rules'})` },
    ]);
  }
  const validRef = isValidGitRefName(ref);
  const source = validRef ? parsed.source : null;
  const sourceref = parsed.sourceref;
  const preview: Preview = { ref, source, sourceref, sha, builds: [], skipped: [], warnings: [] };
  const skipped = preview.skipped;
  const skippedAt: number[] = []; // rule index of each skipped entry, to keep file order

  const whole = event.deleted === true ? SKIP_REASONS.deleted : !validRef ? SKIP_REASONS.invalidRef : source === null ? SKIP_REASONS.otherRef : null;
  if (whole !== null || source === null) {
    for (const r of rules) preview.skipped.push({ rule: r.name, reason: whole ?? SKIP_REASONS.otherRef });
    return preview;
  }

  let version: RefVersion | null | undefined; // computed once, on first need
  const changed = source === 'branch' && Array.isArray(event.changed) && event.changed.length > 0 ? event.changed : null;
  const contributions: Contribution[] = [];
  const values: TemplateValues = { sourceref, sha, groups: null, semver: null };
  for (const rule of rules) {
    let reason: string | null = null;
    let m: Captures | true | null = true;
    if (only !== undefined && rule.name !== only) reason = SKIP_REASONS.notRequested;
    else if (rule.source !== source) reason = source === 'tag' ? 'source is branch, ref is a tag' : 'source is tag, ref is a branch';
    else if (rule.matcher && (m = testMatch(rule.matcher, sourceref)) === null) reason = SKIP_REASONS.noMatch;
    else if (rule.range) {
      if (version === undefined) version = versionOf(sourceref);
      if (!version) reason = SKIP_REASONS.notSemver;
      else if (!rule.range.test(version.parsed)) reason = SKIP_REASONS.rangeNotSatisfied;
    }
    if (reason === null && rule.paths && changed && !pathsPass(rule.paths, changed)) reason = SKIP_REASONS.paths;
    if (reason === null && !rule.autobuild && !opts.manual) reason = SKIP_REASONS.autobuild;
    if (reason !== null) {
      skipped.push({ rule: rule.name, reason });
      skippedAt.push(rule.index);
      continue;
    }

    if (rule.needsVersion && version === undefined) version = versionOf(sourceref);
    const semver = version ? version.values : null;
    values.groups = m === true ? null : m;
    values.semver = semver;
    const prerelease = semver !== null && semver.prerelease !== '';
    const tags: string[] = [];
    for (const t of rule.tags) {
      // A pre-release never moves a release tag.
      if (prerelease && ((t.literal && t.source === 'latest') || t.releaseOnly)) continue;
      const out = renderTemplate(t, values);
      if (out === null) {
        preview.warnings.push(`rule "${rule.name}": tag "${t.source}" skipped: ${missingWhy(missingVariable(t, values), sourceref)}`);
        continue;
      }
      const tag = sanitizeTag(out);
      if (tag === '') preview.warnings.push(`rule "${rule.name}": tag "${t.source}" skipped: it is empty once made valid for Docker`);
      else if (!tags.includes(tag)) tags.push(tag);
    }
    if (tags.length === 0) {
      skipped.push({ rule: rule.name, reason: SKIP_REASONS.noTags });
      skippedAt.push(rule.index);
      continue;
    }
    const buildArgs: Record<string, string> = {};
    for (const [name, t] of rule.buildArgs) {
      const out = renderTemplate(t, values);
      if (out === null) preview.warnings.push(`rule "${rule.name}": build arg ${name} left out: ${missingWhy(missingVariable(t, values), sourceref)}`);
      else buildArgs[name] = out;
    }
    contributions.push({ rule, tags, buildArgs });
  }

  // Identical build inputs: one build, the union of tags, rules and deploys, in rule order.
  const order: Merged[] = [];
  for (const c of contributions) {
    let entry = order.find((e) => sameInputs(e.build, c));
    if (!entry) {
      entry = {
        build: {
          rules: [],
          tags: [],
          context: c.rule.context,
          dockerfile: c.rule.dockerfile,
          build_args: c.buildArgs,
          cache: c.rule.cache,
          // One object shape on the webhook's hot path; undefined leaves `target` out of the JSON.
          target: c.rule.target ?? undefined,
          deploy: [],
        },
        indexes: [],
      };
      order.push(entry);
    }
    entry.build.rules.push(c.rule.name);
    entry.indexes.push(c.rule.index);
    for (const t of c.tags) if (!entry.build.tags.includes(t)) entry.build.tags.push(t);
    if (c.rule.deploy !== null && !entry.build.deploy.includes(c.rule.deploy)) entry.build.deploy.push(c.rule.deploy);
  }

  // Two different images never race for one tag: an earlier build keeps it.
  const taken = new Set<string>();
  let outOfOrder = false;
  for (const { build, indexes } of order) {
    let kept = build.tags;
    if (taken.size > 0 && build.tags.some((t) => taken.has(t))) {
      kept = [];
      for (const t of build.tags) {
        if (taken.has(t)) preview.warnings.push(`tag "${t}" dropped from the build of ${quoteList(build.rules)}: an earlier build of this event already carries it`);
        else kept.push(t);
      }
    }
    for (const t of kept) taken.add(t);
    if (kept.length === 0) {
      for (let i = 0; i < indexes.length; i++) {
        skipped.push({ rule: build.rules[i]!, reason: SKIP_REASONS.noTags });
        skippedAt.push(indexes[i]!);
      }
      outOfOrder = true;
      continue;
    }
    build.tags = kept;
    preview.builds.push(build);
  }

  if (outOfOrder) {
    const byIndex = skipped.map((entry, i) => ({ entry, at: skippedAt[i]! })).sort((a, b) => a.at - b.at);
    preview.skipped = byIndex.map((x) => x.entry);
  }
  return preview;
}

/** Builds merge when their inputs are equal: context, dockerfile, target, cache and the rendered build args. */
function sameInputs(build: PlannedBuild, c: Contribution): boolean {
  if (build.context !== c.rule.context || build.dockerfile !== c.rule.dockerfile || build.cache !== c.rule.cache) return false;
  if ((build.target ?? null) !== c.rule.target) return false;
  const a = build.build_args;
  const b = c.buildArgs;
  let n = 0;
  for (const k in a) {
    if (b[k] !== a[k]) return false;
    n++;
  }
  for (const _ in b) n--;
  return n === 0;
}

function missingWhy(variable: string, sourceref: string): string {
  return `${variable} has no value because ${JSON.stringify(sourceref)} is not a SemVer version`;
}

function quoteList(names: readonly string[]): string {
  return names.length === 1 ? `rule "${names[0]}"` : `rules ${names.map((n) => `"${n}"`).join(', ')}`;
}

