import { defaultRule, type CompiledConfig, type CompiledRule } from './compile.js';
import { RulesError } from './errors.js';
import { testMatch } from './match.js';
import { pathsPass } from './paths.js';
import { isValidGitRefName, parseRef } from './refname.js';
import { sanitizeTag } from './tag.js';
import { renderTemplate, type TemplateValues } from './template.js';
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
  key: string;
}

/**
 * What one ref event builds under a compiled configuration. Pure and total: never throws for
 * any event (only for an unknown `opts.rule`), the same input always gives the same output.
 */
export function evaluate(compiled: CompiledConfig, event: RefEvent, opts: EvaluateOptions = {}): Preview {
  const ref = String(event.ref);
  const sha = String(event.sha);
  const parsed = parseRef(ref);
  const rules = compiled.rules ?? [defaultRule(compiled, event.defaultBranch || compiled.config.default_branch)];
  if (opts.rule !== undefined && !rules.some((r) => r.name === opts.rule)) {
    const names = rules.map((r) => r.name);
    throw new RulesError([
      { path: 'rule', message: `unknown rule ${JSON.stringify(opts.rule)} (${names.length ? `rules: ${names.join(', ')}` : 'the config has no rules'})` },
    ]);
  }
  const validRef = isValidGitRefName(ref);
  const preview: Preview = { ref, source: validRef ? parsed.source : null, sourceref: parsed.sourceref, sha, builds: [], skipped: [], warnings: [] };
  const skipped: { index: number; rule: string; reason: string }[] = [];
  const skip = (r: CompiledRule, reason: string) => skipped.push({ index: r.index, rule: r.name, reason });

  const whole = event.deleted
    ? SKIP_REASONS.deleted
    : !validRef
      ? SKIP_REASONS.invalidRef
      : parsed.source === null
        ? SKIP_REASONS.otherRef
        : null;
  if (whole !== null || parsed.source === null) {
    for (const r of rules) skip(r, whole ?? SKIP_REASONS.otherRef);
    preview.skipped = skipped.map(({ rule, reason }) => ({ rule, reason }));
    return preview;
  }

  const source = parsed.source;
  const sourceref = parsed.sourceref;
  let version: RefVersion | null | undefined; // computed once, on first need
  const versionNow = () => (version === undefined ? (version = versionOf(sourceref)) : version);
  const changed = source === 'branch' && Array.isArray(event.changed) && event.changed.length > 0 ? event.changed : null;

  const contributions: Contribution[] = [];
  for (const rule of rules) {
    if (opts.rule !== undefined && rule.name !== opts.rule) {
      skip(rule, SKIP_REASONS.notRequested);
      continue;
    }
    if (rule.source !== source) {
      skip(rule, `source is ${rule.source}, ref is a ${source}`);
      continue;
    }
    const m = rule.matcher ? testMatch(rule.matcher, sourceref) : true;
    if (m === null) {
      skip(rule, SKIP_REASONS.noMatch);
      continue;
    }
    if (rule.range) {
      const v = versionNow();
      if (!v) {
        skip(rule, SKIP_REASONS.notSemver);
        continue;
      }
      if (!rule.range.test(v.parsed)) {
        skip(rule, SKIP_REASONS.rangeNotSatisfied);
        continue;
      }
    }
    if (rule.paths && changed && !pathsPass(rule.paths, changed)) {
      skip(rule, SKIP_REASONS.paths);
      continue;
    }
    if (!rule.autobuild && !opts.manual) {
      skip(rule, SKIP_REASONS.autobuild);
      continue;
    }

    const v = versionNow();
    const values: TemplateValues = { sourceref, sha, groups: m === true ? null : m, semver: v ? v.values : null };
    const prerelease = v !== null && v.values.prerelease !== '';
    const tags: string[] = [];
    for (const t of rule.tags) {
      // A pre-release never moves a release tag.
      if (prerelease && ((t.literal && t.source === 'latest') || t.releaseOnly)) continue;
      const out = renderTemplate(t, values);
      if ('missing' in out) {
        preview.warnings.push(`rule "${rule.name}": tag "${t.source}" skipped: ${missingWhy(out.missing, sourceref)}`);
        continue;
      }
      const tag = sanitizeTag(out.value);
      if (tag === '') {
        preview.warnings.push(`rule "${rule.name}": tag "${t.source}" skipped: it is empty once made valid for Docker`);
        continue;
      }
      if (!tags.includes(tag)) tags.push(tag);
    }
    if (tags.length === 0) {
      skip(rule, SKIP_REASONS.noTags);
      continue;
    }
    const buildArgs: Record<string, string> = {};
    for (const [name, t] of rule.buildArgs) {
      const out = renderTemplate(t, values);
      if ('missing' in out) preview.warnings.push(`rule "${rule.name}": build arg ${name} left out: ${missingWhy(out.missing, sourceref)}`);
      else buildArgs[name] = out.value;
    }
    contributions.push({ rule, tags, buildArgs, key: inputKey(rule, buildArgs) });
  }

  // Identical build inputs: one build, the union of tags, rules and deploys, in rule order.
  const byKey = new Map<string, { build: PlannedBuild; indexes: number[] }>();
  const order: { build: PlannedBuild; indexes: number[] }[] = [];
  for (const c of contributions) {
    let entry = byKey.get(c.key);
    if (!entry) {
      entry = {
        build: { rules: [], tags: [], context: c.rule.context, dockerfile: c.rule.dockerfile, build_args: c.buildArgs, cache: c.rule.cache, deploy: [] },
        indexes: [],
      };
      byKey.set(c.key, entry);
      order.push(entry);
    }
    entry.build.rules.push(c.rule.name);
    entry.indexes.push(c.rule.index);
    for (const t of c.tags) if (!entry.build.tags.includes(t)) entry.build.tags.push(t);
    if (c.rule.deploy !== null && !entry.build.deploy.includes(c.rule.deploy)) entry.build.deploy.push(c.rule.deploy);
  }

  // Two different images never race for one tag: an earlier build keeps it.
  const taken = new Set<string>();
  for (const { build, indexes } of order) {
    const kept: string[] = [];
    for (const t of build.tags) {
      if (taken.has(t)) {
        preview.warnings.push(`tag "${t}" dropped from the build of ${quoteList(build.rules)}: an earlier build of this event already carries it`);
      } else kept.push(t);
    }
    for (const t of kept) taken.add(t);
    if (kept.length === 0) {
      indexes.forEach((index, i) => skipped.push({ index, rule: build.rules[i]!, reason: SKIP_REASONS.noTags }));
      continue;
    }
    build.tags = kept;
    preview.builds.push(build);
  }

  skipped.sort((a, b) => a.index - b.index);
  preview.skipped = skipped.map(({ rule, reason }) => ({ rule, reason }));
  return preview;
}

function inputKey(rule: CompiledRule, buildArgs: Record<string, string>): string {
  const args = Object.keys(buildArgs)
    .sort()
    .map((k) => [k, buildArgs[k]]);
  return JSON.stringify([rule.context, rule.dockerfile, rule.cache, args]);
}

function missingWhy(variable: string, sourceref: string): string {
  return `${variable} has no value because ${JSON.stringify(sourceref)} is not a SemVer version`;
}

function quoteList(names: readonly string[]): string {
  return names.length === 1 ? `rule "${names[0]}"` : `rules ${names.map((n) => `"${n}"`).join(', ')}`;
}

