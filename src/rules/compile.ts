import { compileMatch } from './match.js';
import { compilePathFilter, type PathFilter } from './paths.js';
import { builderSpec, environmentSpecs } from './specs.js';
import { parseTemplate, type Template } from './template.js';
import type { BuilderSpec, EnvironmentSpec, RepoConfig, Rule } from './types.js';
import { checkConfig, type CheckedRule } from './validate.js';
import type { Matcher } from './match.js';
import type semver from 'semver';

/** One rule, ready to evaluate: matcher, range, path filter and templates prepared once. */
export interface CompiledRule {
  index: number;
  name: string;
  source: Rule['source'];
  matcher: Matcher | null;
  range: semver.Range | null;
  paths: PathFilter | null;
  tags: Template[];
  buildArgs: [string, Template][];
  context: string;
  dockerfile: string;
  cache: boolean;
  target: string | null;
  autobuild: boolean;
  deploy: string | null;
  /** Some template needs the SemVer reading of the sourceref (its variables or the pre-release rule). */
  needsVersion: boolean;
}

export interface CompiledConfig {
  readonly kind: 'compiled';
  readonly config: RepoConfig;
  /** null: no `rules` key, so the default rule applies (its match depends on the event's default branch). */
  readonly rules: readonly CompiledRule[] | null;
  readonly environments: Readonly<Record<string, EnvironmentSpec>>;
  readonly builder: BuilderSpec;
  /** The default rule per default branch, built on first use. */
  readonly defaultRules: Map<string, CompiledRule>;
}

function fromChecked(c: CheckedRule, index: number): CompiledRule {
  const r = c.rule;
  return {
    index,
    name: r.name,
    source: r.source,
    matcher: c.matcher,
    range: c.range,
    paths: r.paths ? compilePathFilter(r.paths) : null,
    tags: c.tags,
    buildArgs: c.buildArgs,
    context: r.context,
    dockerfile: r.dockerfile,
    cache: r.cache,
    target: r.target ?? null,
    autobuild: r.autobuild,
    deploy: r.deploy ?? null,
    needsVersion: [...c.tags, ...c.buildArgs.map(([, t]) => t)].some((t) => t.needsVersion || t.releaseOnly),
  };
}

/**
 * Prepares a configuration for evaluation. Accepts the normalised config (or any raw document:
 * it is checked again, which also guarantees the compiled form matches the stored one).
 */
export function compileConfig(config: RepoConfig | unknown): CompiledConfig {
  const checked = checkConfig(config);
  return {
    kind: 'compiled',
    config: checked.config,
    rules: checked.rules ? checked.rules.map(fromChecked) : null,
    environments: environmentSpecs(checked.config),
    builder: builderSpec(checked.config),
    defaultRules: new Map(),
  };
}

/** `{name: default, source: branch, match: <default branch>, tags: [latest]}` */
export function defaultRule(compiled: CompiledConfig, defaultBranch: string): CompiledRule {
  let rule = compiled.defaultRules.get(defaultBranch);
  if (!rule) {
    const m = compileMatch(defaultBranch);
    const latest = parseTemplate('latest');
    rule = {
      index: 0,
      name: 'default',
      source: 'branch',
      // The default branch is a plain name; should it look like a pattern, it still means itself.
      matcher: m.ok && m.matcher.kind === 'exact' ? m.matcher : { kind: 'exact', value: defaultBranch },
      range: null,
      paths: null,
      tags: latest.ok ? [latest.template] : [],
      buildArgs: [],
      context: '.',
      dockerfile: 'Dockerfile',
      cache: false,
      target: null,
      autobuild: true,
      deploy: null,
      needsVersion: true, // tags: [latest]
    };
    compiled.defaultRules.set(defaultBranch, rule);
  }
  return rule;
}
