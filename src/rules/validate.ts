import { posix } from 'node:path';
import { childPath, RulesError, type Problem } from './errors.js';
import { imageProblem } from './image.js';
import { compileMatch, type Matcher } from './match.js';
import { compilePathGlob } from './paths.js';
import { isValidBranchName } from './refname.js';
import { isValidDockerTag } from './tag.js';
import { parseTemplate, type Template } from './template.js';
import { parseDuration, parseMemory } from './units.js';
import { compileRange } from './version.js';
import type semver from 'semver';
import type {
  BuilderConfig,
  EnvironmentConfig,
  HealthConfig,
  RepoConfig,
  Rule,
  ServiceConfig,
  SourceConfig,
  UpdateConfig,
} from './types.js';

/** A rule with everything prepared for evaluation. */
export interface CheckedRule {
  rule: Rule;
  matcher: Matcher | null; // null: only `semver` given, so any name matches
  range: semver.Range | null;
  tags: Template[];
  buildArgs: [string, Template][];
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
// A key whose value is undefined (possible from JS callers, never from JSON or YAML) counts as absent.
const has = (o: Obj, k: string) => Object.prototype.hasOwnProperty.call(o, k) && o[k] !== undefined;

const TOP_KEYS = ['repository', 'image', 'default_branch', 'builder', 'source', 'environments', 'rules'];
/** What `FROM … AS <name>` accepts (BuildKit compares stage names case-insensitively). */
const STAGE_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/;
const RULE_KEYS = ['name', 'source', 'match', 'semver', 'tags', 'dockerfile', 'context', 'build_args', 'paths', 'autobuild', 'cache', 'target', 'deploy'];
const ENV_KEYS = ['service', 'replicas', 'ports', 'endpoint', 'env', 'health', 'update', 'promote_from', 'protected', 'command', 'services'];
const SERVICE_KEYS = ['build', 'image', 'role', 'command', 'env', 'replicas', 'ports', 'health', 'depends_on'];
/** An image pinned by digest: `repository@sha256:<hex>`, no tag. */
const PINNED_IMAGE = /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::\d+)?(?:\/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*@sha256:[a-f0-9]{64}$/;
const HEALTH_KEYS = ['cmd', 'interval', 'timeout', 'retries', 'start_period'];
const UPDATE_KEYS = ['parallelism', 'delay', 'order', 'failure_action', 'monitor', 'max_failure_ratio'];
const BUILDER_KEYS = ['isolation', 'timeout', 'cancel_superseded', 'concurrency', 'memory', 'cpus', 'network'];
const SOURCE_KEYS = ['url'];

const GITHUB_REPO = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/[A-Za-z0-9._-]{1,100}$/;
const ENV_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
// swarmkit's service-name rule: letters and digits, `-`/`_` only between them, at most 63 characters.
const SERVICE_NAME = /^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$/;
const ENV_VAR = /^[A-Za-z_][A-Za-z0-9_]*$/;
const BUILD_ARG = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const PORT = /^(\d{1,5}):(\d{1,5})(?:\/(tcp|udp))?$/;
// Clone URLs git understands: scheme://…, scp-like user@host:path, or an absolute local path.
const GIT_URL = /^(?:(?:https?|ssh|git|file|git\+ssh|ssh\+git):\/\/\S+|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\S+|\/\S*)$/;

const UPDATE_DEFAULTS: UpdateConfig = {
  parallelism: 1,
  delay: '1s',
  order: 'start-first',
  failure_action: 'rollback',
  monitor: '5s',
  max_failure_ratio: 0,
};

/** Collects every problem of one document. */
class Checker {
  readonly problems: Problem[] = [];

  add(path: string, message: string): void {
    this.problems.push({ path, message });
  }

  unknownKeys(o: Obj, path: string, allowed: readonly string[]): void {
    for (const k of Object.keys(o)) {
      if (!allowed.includes(k)) this.add(childPath(path, k), `unknown key (allowed here: ${allowed.join(', ')})`);
    }
  }

  string(o: Obj, key: string, path: string, opts: { required?: boolean } = {}): string | undefined {
    const p = childPath(path, key);
    if (!has(o, key)) {
      if (opts.required) this.add(p, 'required');
      return undefined;
    }
    const v = o[key];
    if (typeof v !== 'string') {
      this.add(p, `must be a string, not ${describe(v)}`);
      return undefined;
    }
    if (v === '') {
      this.add(p, 'must not be empty');
      return undefined;
    }
    return v;
  }

  bool(o: Obj, key: string, path: string, fallback: boolean): boolean {
    if (!has(o, key)) return fallback;
    const v = o[key];
    if (typeof v !== 'boolean') {
      this.add(childPath(path, key), `must be true or false, not ${describe(v)}`);
      return fallback;
    }
    return v;
  }

  int(o: Obj, key: string, path: string, min: number, max: number, fallback: number): number;
  int(o: Obj, key: string, path: string, min: number, max: number, fallback?: number): number | undefined;
  int(o: Obj, key: string, path: string, min: number, max: number, fallback?: number): number | undefined {
    if (!has(o, key)) return fallback;
    const v = o[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.add(childPath(path, key), `must be a whole number from ${min} to ${max}, not ${describe(v)}`);
      return fallback;
    }
    return v;
  }

  oneOf<T extends string>(o: Obj, key: string, path: string, values: readonly T[], fallback: T): T {
    if (!has(o, key)) return fallback;
    const v = o[key];
    if (typeof v !== 'string' || !values.includes(v as T)) {
      this.add(childPath(path, key), `must be one of ${values.join(', ')}, not ${describe(v)}`);
      return fallback;
    }
    return v as T;
  }

  duration(o: Obj, key: string, path: string): string | undefined {
    if (!has(o, key)) return undefined;
    const v = o[key];
    if (typeof v !== 'string' || parseDuration(v) === null) {
      this.add(childPath(path, key), `must be a duration like 500ms, 2s, 1m or 1h, not ${describe(v)}`);
      return undefined;
    }
    return v;
  }

  mapping(o: Obj, key: string, path: string): Obj | undefined {
    if (!has(o, key)) return undefined;
    const v = o[key];
    if (!isObj(v)) {
      this.add(childPath(path, key), `must be a mapping, not ${describe(v)}`);
      return undefined;
    }
    return v;
  }

  /** A map of names to scalar values (strings; numbers and booleans are taken as their text). */
  stringMap(o: Obj, key: string, path: string, keyRule: RegExp, keyHint: string): Record<string, string> {
    const m = this.mapping(o, key, path);
    const out: Record<string, string> = {};
    if (!m) return out;
    const base = childPath(path, key);
    for (const [k, v] of Object.entries(m)) {
      const p = childPath(base, k);
      if (!keyRule.test(k)) this.add(p, `invalid name ${JSON.stringify(k)} (${keyHint})`);
      else if (typeof v === 'string') out[k] = v;
      else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
      else this.add(p, `must be a string, not ${describe(v)}`);
    }
    return out;
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v);
  return `${typeof v} ${String(v)}`;
}

/** Checks a whole raw document; throws RulesError naming every problem. */
export function checkConfig(doc: unknown): { config: RepoConfig; rules: CheckedRule[] | null } {
  const c = new Checker();
  if (!isObj(doc)) {
    throw new RulesError([{ path: '', message: `the configuration must be a mapping of repository, image, rules…, not ${describe(doc)}` }]);
  }
  c.unknownKeys(doc, '', TOP_KEYS);

  const repository = c.string(doc, 'repository', '', { required: true });
  if (repository !== undefined && (!GITHUB_REPO.test(repository) || /\/\.\.?$/.test(repository))) {
    c.add('repository', `${JSON.stringify(repository)} is not a GitHub repository "owner/name"`);
  }
  const image = c.string(doc, 'image', '', { required: true });
  if (image !== undefined) {
    const problem = imageProblem(image);
    if (problem) c.add('image', problem);
  }
  let defaultBranch = c.string(doc, 'default_branch', '');
  if (defaultBranch !== undefined && !isValidBranchName(defaultBranch)) {
    c.add('default_branch', `${JSON.stringify(defaultBranch)} is not a valid branch name`);
    defaultBranch = undefined;
  }

  const builder = checkBuilder(c, doc);
  const source = checkSource(c, doc);
  const environments = checkEnvironments(c, doc);

  let rules: CheckedRule[] | null = null;
  if (has(doc, 'rules')) {
    const raw = doc.rules;
    if (!Array.isArray(raw)) {
      c.add('rules', `must be a list of rules (leave the key out for the default rule, or use [] to build nothing), not ${describe(raw)}`);
    } else {
      const firstByName = new Map<string, number>();
      rules = [];
      raw.forEach((r, i) => {
        const checked = checkRule(c, r, `rules[${i}]`, environments);
        const name = isObj(r) && typeof r.name === 'string' && r.name !== '' ? r.name : undefined;
        if (name !== undefined) {
          const first = firstByName.get(name);
          if (first !== undefined) c.add(`rules[${i}].name`, `duplicate rule name ${JSON.stringify(name)} (first used at rules[${first}])`);
          else firstByName.set(name, i);
        }
        if (checked) rules!.push(checked);
      });
    }
  }

  checkServiceSources(c, environments, rules ? rules.map((r) => r.rule) : null);
  if (c.problems.length > 0) throw new RulesError(c.problems);
  const config: RepoConfig = {
    repository: repository!,
    image: image!,
    default_branch: defaultBranch ?? 'main',
    builder,
    ...(source ? { source } : {}),
    environments,
    ...(rules ? { rules: rules.map((r) => r.rule) } : {}),
  };
  return { config, rules };
}

function checkBuilder(c: Checker, doc: Obj): BuilderConfig {
  const b = c.mapping(doc, 'builder', '') ?? {};
  const p = 'builder';
  c.unknownKeys(b, p, BUILDER_KEYS);
  const out: BuilderConfig = {
    isolation: c.oneOf(b, 'isolation', p, ['dedicated', 'shared'] as const, 'dedicated'),
    timeout: c.duration(b, 'timeout', p) ?? '30m',
    cancel_superseded: c.bool(b, 'cancel_superseded', p, false),
    concurrency: c.int(b, 'concurrency', p, 1, 16, 1),
    network: c.oneOf(b, 'network', p, ['default', 'none'] as const, 'default'),
  };
  if (parseDuration(out.timeout) === 0) c.add('builder.timeout', 'must be longer than 0');
  if (has(b, 'memory')) {
    const v = b.memory;
    if (typeof v !== 'string' || parseMemory(v) === null) c.add('builder.memory', `must be a size like 512m or 2g, not ${describe(v)}`);
    else out.memory = v;
  }
  if (has(b, 'cpus')) {
    const v = b.cpus;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 1024) c.add('builder.cpus', `must be a number of CPUs above 0 (e.g. 1.5), not ${describe(v)}`);
    else out.cpus = v;
  }
  return out;
}

function checkSource(c: Checker, doc: Obj): SourceConfig | undefined {
  const s = c.mapping(doc, 'source', '');
  if (!s) return undefined;
  c.unknownKeys(s, 'source', SOURCE_KEYS);
  const url = c.string(s, 'url', 'source');
  if (url !== undefined && !GIT_URL.test(url)) {
    c.add('source.url', `${JSON.stringify(url)} is not a clone URL git understands (https://…, ssh://…, git://…, file://…, user@host:path or /path)`);
    return {};
  }
  return url !== undefined ? { url } : {};
}

function checkEnvironments(c: Checker, doc: Obj): Record<string, EnvironmentConfig> {
  const envs = c.mapping(doc, 'environments', '');
  const out: Record<string, EnvironmentConfig> = {};
  if (!envs) return out;
  const services = new Map<string, string>();
  const ports = new Map<string, string>();
  for (const [name, raw] of Object.entries(envs)) {
    const p = childPath('environments', name);
    if (!ENV_NAME.test(name)) c.add(p, `invalid environment name ${JSON.stringify(name)} (lower-case letters, digits, - and _, at most 63)`);
    if (!isObj(raw)) {
      c.add(p, `must be a mapping with at least service, not ${describe(raw)}`);
      continue;
    }
    const env = checkEnvironment(c, raw, p);
    out[name] = env;
    if (env.service) {
      const other = services.get(env.service);
      if (other !== undefined) c.add(childPath(p, 'service'), `service ${JSON.stringify(env.service)} is already used by environment ${JSON.stringify(other)}`);
      else services.set(env.service, name);
    }
    env.ports.forEach((port, i) => {
      const m = PORT.exec(port)!;
      const key = `${m[1]}/${m[3] ?? 'tcp'}`;
      const other = ports.get(key);
      if (other !== undefined) c.add(`${p}.ports[${i}]`, `host port ${key} is already published by environment ${JSON.stringify(other)}`);
      else ports.set(key, name);
    });
  }
  // promote_from: another environment of the file, not itself, and no cycles.
  for (const [name, env] of Object.entries(out)) {
    const from = env.promote_from;
    if (from === undefined) continue;
    const p = `${childPath('environments', name)}.promote_from`;
    if (from === name) c.add(p, 'an environment cannot promote from itself');
    else if (!has(out, from) && !has(envs, from)) c.add(p, `unknown environment ${JSON.stringify(from)} (environments: ${Object.keys(envs).join(', ')})`);
    else {
      const seen = new Set([name]);
      let cur: string | undefined = from;
      while (cur !== undefined && !seen.has(cur)) {
        seen.add(cur);
        cur = out[cur]?.promote_from;
      }
      if (cur === name) c.add(p, `promote_from makes a cycle (${[...seen].join(' → ')} → ${name})`);
    }
  }
  return out;
}

function checkEnvironment(c: Checker, e: Obj, p: string): EnvironmentConfig {
  c.unknownKeys(e, p, ENV_KEYS);
  const service = c.string(e, 'service', p, { required: true });
  if (service !== undefined && (service.length > 63 || !SERVICE_NAME.test(service))) {
    c.add(`${p}.service`, `${JSON.stringify(service)} is not a Docker service name (letters and digits, - and _ between them, at most 63)`);
  }
  const ports = checkPorts(c, e, p);
  const env: EnvironmentConfig = {
    service: service ?? '',
    replicas: c.int(e, 'replicas', p, 0, 100, 1),
    ports,
    endpoint: c.oneOf(e, 'endpoint', p, ['proxy', 'mesh'] as const, 'proxy'),
    env: c.stringMap(e, 'env', p, ENV_VAR, 'letters, digits and _, not starting with a digit'),
    update: checkUpdate(c, e, p),
    protected: c.bool(e, 'protected', p, false),
  };
  const health = checkHealth(c, e, p);
  if (health) env.health = health;
  const from = c.string(e, 'promote_from', p);
  if (from !== undefined) env.promote_from = from;
  const command = checkCommand(c, e, p);
  const services = has(e, 'services') ? checkServices(c, e, p, env) : undefined;
  if (services) {
    // The normalised form carries `ports: []`: only ports actually given are a problem.
    for (const key of ['ports', 'health', 'command']) {
      if (has(e, key) && !(key === 'ports' && ports.length === 0)) c.add(`${p}.${key}`, `with services, give ${key} per service (environments.<env>.services.<name>.${key})`);
    }
  }
  // keep the documented key order in the JSON form
  const { service: s, replicas, ports: pts, endpoint, env: vars, health: h, update, promote_from, protected: prot } = env;
  return {
    service: s,
    replicas,
    ports: pts,
    endpoint,
    env: vars,
    ...(h ? { health: h } : {}),
    update,
    ...(promote_from !== undefined ? { promote_from } : {}),
    protected: prot,
    ...(command && !services ? { command } : {}),
    ...(services ? { services } : {}),
  };
}

function checkPorts(c: Checker, e: Obj, p: string): string[] {
  const ports: string[] = [];
  if (!has(e, 'ports')) return ports;
  const raw = e.ports;
  if (!Array.isArray(raw)) c.add(`${p}.ports`, `must be a list like ["18080:8080"], not ${describe(raw)}`);
  else
    raw.forEach((v, i) => {
      const m = typeof v === 'string' ? PORT.exec(v) : null;
      const ok = m && [m[1], m[2]].every((n) => Number(n) >= 1 && Number(n) <= 65535);
      if (!ok) c.add(`${p}.ports[${i}]`, `must be "host:container" with ports 1-65535 and optional /tcp or /udp (e.g. "18080:8080"), not ${describe(v)}`);
      else ports.push(v as string);
    });
  return ports;
}

/** `command`: exec form (a list of strings), or a shell command line, run as `/bin/sh -c`. */
function checkCommand(c: Checker, e: Obj, p: string): string[] | undefined {
  if (!has(e, 'command')) return undefined;
  const v = e.command;
  if (typeof v === 'string' && v.trim() !== '') return ['/bin/sh', '-c', v];
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string') && v[0] !== '') return [...(v as string[])];
  c.add(`${p}.command`, `must be a list of strings like ["node", "dist/worker.js"] or a shell command line, not ${describe(v)}`);
  return undefined;
}

/**
 * The services of an application environment: each from a rule's builds or an image pinned by digest,
 * its ports unique in the environment, `depends_on` naming other non-job services without a cycle.
 */
function checkServices(c: Checker, e: Obj, p: string, env: EnvironmentConfig): Record<string, ServiceConfig> | undefined {
  const raw = c.mapping(e, 'services', p);
  if (!raw) return undefined;
  const sp = `${p}.services`;
  if (Object.keys(raw).length === 0) c.add(sp, 'must name at least one service (leave services out for a single-service environment)');
  const out: Record<string, ServiceConfig> = {};
  const hostPorts = new Map<string, string>();
  for (const [name, v] of Object.entries(raw)) {
    const np = childPath(sp, name);
    const full = `${env.service}-${name}`;
    if (!SERVICE_NAME.test(name)) c.add(np, `${JSON.stringify(name)} is not a service name (letters and digits, - and _ between them)`);
    else if (env.service && full.length > 63) c.add(np, `its Swarm service name ${full} is longer than 63 characters; shorten the environment's service or this name`);
    if (!isObj(v)) {
      c.add(np, `must be a mapping with build (a rule) or image (repository@sha256:…), not ${describe(v)}`);
      continue;
    }
    c.unknownKeys(v, np, SERVICE_KEYS);
    const build = c.string(v, 'build', np);
    const image = c.string(v, 'image', np);
    if ((build === undefined) === (image === undefined)) c.add(np, 'give exactly one of build (the rule whose builds it runs) and image (an image pinned by digest)');
    if (image !== undefined && !PINNED_IMAGE.test(image)) c.add(`${np}.image`, `must be pinned by digest as repository@sha256:<64 hex>, not ${JSON.stringify(image)}`);
    const ports = checkPorts(c, v, np);
    const role = c.oneOf(v, 'role', np, ['web', 'worker', 'job'] as const, ports.length > 0 ? 'web' : 'worker');
    const command = checkCommand(c, v, np);
    const vars = { ...env.env, ...c.stringMap(v, 'env', np, ENV_VAR, 'letters, digits and _, not starting with a digit') };
    const replicas = c.int(v, 'replicas', np, 0, 100, env.replicas);
    const health = checkHealth(c, v, np);
    if (role === 'job') {
      for (const key of ['replicas', 'ports', 'health']) if (has(v, key) && !(key === 'ports' && ports.length === 0)) c.add(`${np}.${key}`, 'a job runs once to completion: it has no ' + key);
    }
    ports.forEach((port, i) => {
      const m = PORT.exec(port)!;
      const key = `${m[1]}/${m[3] ?? 'tcp'}`;
      const other = hostPorts.get(key);
      if (other !== undefined) c.add(`${np}.ports[${i}]`, `host port ${key} is already published by service ${JSON.stringify(other)}`);
      else hostPorts.set(key, name);
    });
    const dependsOn: string[] = [];
    if (has(v, 'depends_on')) {
      const d = v.depends_on;
      if (!Array.isArray(d) || !d.every((x) => typeof x === 'string')) c.add(`${np}.depends_on`, `must be a list of service names, not ${describe(d)}`);
      else dependsOn.push(...(d as string[]));
    }
    out[name] = {
      ...(build !== undefined ? { build } : {}),
      ...(image !== undefined ? { image } : {}),
      role,
      ...(command ? { command } : {}),
      env: vars,
      ...(role !== 'job' ? { replicas: replicas ?? env.replicas } : {}),
      ports: role === 'job' ? [] : ports,
      ...(health && role !== 'job' ? { health } : {}),
      depends_on: dependsOn,
    };
  }
  for (const [name, svc] of Object.entries(out)) {
    svc.depends_on.forEach((dep, i) => {
      const dp = `${childPath(sp, name)}.depends_on[${i}]`;
      if (dep === name) c.add(dp, 'a service cannot depend on itself');
      else if (!out[dep]) c.add(dp, `unknown service ${JSON.stringify(dep)} (services: ${Object.keys(out).join(', ')})`);
      else if (out[dep]!.role === 'job' || svc.role === 'job') c.add(dp, 'jobs run before every service: leave them out of depends_on');
    });
  }
  const cycle = dependencyCycle(out);
  if (cycle) c.add(`${childPath(sp, cycle[0]!)}.depends_on`, `depends_on forms a cycle: ${cycle.join(' → ')}`);
  return out;
}

/** A cycle of `depends_on` (first name repeated at the end), or null. */
function dependencyCycle(services: Record<string, ServiceConfig>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const walk = (name: string, path: string[]): string[] | null => {
    if (state.get(name) === 'done') return null;
    if (state.get(name) === 'open') return [...path.slice(path.indexOf(name)), name];
    state.set(name, 'open');
    for (const dep of services[name]?.depends_on ?? []) {
      if (!services[dep] || dep === name) continue;
      const found = walk(dep, [...path, name]);
      if (found) return found;
    }
    state.set(name, 'done');
    return null;
  };
  for (const name of Object.keys(services)) {
    const found = walk(name, []);
    if (found) return found;
  }
  return null;
}

/**
 * Across environments and rules: a service's `build` names a rule; a rule that deploys to an
 * application feeds one of its services; promote_from joins applications of the same services.
 */
function checkServiceSources(c: Checker, environments: Record<string, EnvironmentConfig>, rules: Rule[] | null): void {
  const ruleNames = rules ? rules.map((r) => r.name) : ['default'];
  for (const [envName, env] of Object.entries(environments)) {
    const ep = childPath('environments', envName);
    for (const [name, svc] of Object.entries(env.services ?? {})) {
      if (svc.build !== undefined && !ruleNames.includes(svc.build)) {
        c.add(`${childPath(`${ep}.services`, name)}.build`, `unknown rule ${JSON.stringify(svc.build)} (rules: ${ruleNames.join(', ') || 'none'})`);
      }
    }
    const from = env.promote_from !== undefined ? environments[env.promote_from] : undefined;
    if (from && (from.services || env.services)) {
      const mine = Object.keys(env.services ?? {}).sort();
      const theirs = Object.keys(from.services ?? {}).sort();
      if (mine.join() !== theirs.join()) {
        c.add(`${ep}.promote_from`, `${envName} and ${env.promote_from} must run the same services to promote (${envName}: ${mine.join(', ') || 'a single service'}; ${env.promote_from}: ${theirs.join(', ') || 'a single service'})`);
      }
    }
  }
  (rules ?? []).forEach((rule, i) => {
    const env = rule.deploy !== undefined ? environments[rule.deploy] : undefined;
    if (!env?.services) return;
    if (!Object.values(env.services).some((s) => s.build === rule.name)) {
      c.add(`rules[${i}].deploy`, `no service of ${rule.deploy} is built by rule ${rule.name} (give one of its services build: ${rule.name})`);
    }
  });
}

function checkHealth(c: Checker, e: Obj, p: string): HealthConfig | undefined {
  const h = c.mapping(e, 'health', p);
  if (!h) return undefined;
  const hp = `${p}.health`;
  c.unknownKeys(h, hp, HEALTH_KEYS);
  let cmd: string[] = [];
  if (!has(h, 'cmd')) c.add(`${hp}.cmd`, 'required');
  else {
    const v = h.cmd;
    const list = Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : null;
    const ok =
      list !== null &&
      ((list[0] === 'CMD' && list.length >= 2 && list[1] !== '') ||
        (list[0] === 'CMD-SHELL' && list.length === 2 && list[1] !== '') ||
        (list[0] === 'NONE' && list.length === 1));
    if (!ok) c.add(`${hp}.cmd`, 'must be ["CMD", "program", "arg"…], ["CMD-SHELL", "shell command"] or ["NONE"]');
    else cmd = list!;
  }
  const out: HealthConfig = { cmd };
  const interval = c.duration(h, 'interval', hp);
  if (interval !== undefined) out.interval = interval;
  const timeout = c.duration(h, 'timeout', hp);
  if (timeout !== undefined) out.timeout = timeout;
  const retries = c.int(h, 'retries', hp, 1, 100);
  if (retries !== undefined) out.retries = retries;
  const start = c.duration(h, 'start_period', hp);
  if (start !== undefined) out.start_period = start;
  return out;
}

function checkUpdate(c: Checker, e: Obj, p: string): UpdateConfig {
  const u = c.mapping(e, 'update', p) ?? {};
  const up = `${p}.update`;
  c.unknownKeys(u, up, UPDATE_KEYS);
  const out: UpdateConfig = {
    parallelism: c.int(u, 'parallelism', up, 0, 1000, UPDATE_DEFAULTS.parallelism),
    delay: c.duration(u, 'delay', up) ?? UPDATE_DEFAULTS.delay,
    order: c.oneOf(u, 'order', up, ['start-first', 'stop-first'] as const, UPDATE_DEFAULTS.order),
    failure_action: c.oneOf(u, 'failure_action', up, ['rollback', 'pause', 'continue'] as const, UPDATE_DEFAULTS.failure_action),
    monitor: c.duration(u, 'monitor', up) ?? UPDATE_DEFAULTS.monitor,
    max_failure_ratio: UPDATE_DEFAULTS.max_failure_ratio,
  };
  if (has(u, 'max_failure_ratio')) {
    const v = u.max_failure_ratio;
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) c.add(`${up}.max_failure_ratio`, `must be a number from 0 to 1, not ${describe(v)}`);
    else out.max_failure_ratio = v;
  }
  return out;
}

/** `./docs/` → `docs`; null with a message when absolute or leaving its base. */
/** Newlines, tabs and other control characters: names and paths reach logs and event streams, where they would start new lines. */
const CONTROL = /[\u0000-\u001f\u007f]/;

function normalisePath(v: string, leaves: string): { path: string } | { message: string } {
  if (CONTROL.test(v)) return { message: 'must not contain control characters (newlines, tabs)' };
  if (v.startsWith('/')) return { message: `must be a relative path, not absolute (${JSON.stringify(v)})` };
  let n = posix.normalize(v);
  if (n.length > 1) n = n.replace(/\/+$/, '');
  if (n === '..' || n.startsWith('../')) return { message: `${JSON.stringify(v)} leaves the ${leaves}` };
  return { path: n };
}

function checkRule(c: Checker, raw: unknown, p: string, environments: Record<string, EnvironmentConfig>): CheckedRule | null {
  if (!isObj(raw)) {
    c.add(p, `must be a mapping with name, source, match and tags, not ${describe(raw)}`);
    return null;
  }
  c.unknownKeys(raw, p, RULE_KEYS);
  const name = c.string(raw, 'name', p, { required: true });
  if (name !== undefined && CONTROL.test(name)) c.add(`${p}.name`, 'must not contain control characters (newlines, tabs)');
  let source: Rule['source'] | undefined;
  if (!has(raw, 'source')) c.add(`${p}.source`, 'required');
  else if (raw.source === 'branch' || raw.source === 'tag') source = raw.source;
  else c.oneOf(raw, 'source', p, ['branch', 'tag'] as const, 'branch'); // reports the problem

  const match = c.string(raw, 'match', p);
  let matcher: Matcher | null = null;
  let matchOk = match !== undefined;
  if (match !== undefined) {
    const m = compileMatch(match);
    if (m.ok) matcher = m.matcher;
    else {
      c.add(`${p}.match`, m.message);
      matchOk = false;
    }
  }
  const semverText = c.string(raw, 'semver', p);
  let range: semver.Range | null = null;
  if (semverText !== undefined) {
    if (source === 'branch') c.add(`${p}.semver`, 'semver is only for tag rules (source: tag)');
    const r = compileRange(semverText);
    if (r.ok) range = r.range;
    else c.add(`${p}.semver`, r.message);
  }
  if (!has(raw, 'match') && !has(raw, 'semver')) c.add(`${p}.match`, 'required (or give semver)');

  const groupProblem = (t: Template): string | null => {
    if (!matchOk && match !== undefined) return null; // the match itself is already reported
    for (const s of t.segments) {
      if (s.kind !== 'group' && s.kind !== 'named') continue;
      const label = s.kind === 'group' ? `{\\${s.index}}` : `{<${s.name}>}`;
      if (matcher?.kind !== 'regex') return `${label} needs match to be a regular expression (/…/)`;
      if (s.kind === 'group' && s.index > matcher.groupCount) {
        return `${label}: the regular expression has ${matcher.groupCount} capture group${matcher.groupCount === 1 ? '' : 's'}`;
      }
      if (s.kind === 'named' && !matcher.groupNames.has(s.name)) return `${label}: the regular expression has no group named "${s.name}"`;
    }
    return null;
  };

  const tags: Template[] = [];
  const tagTexts: string[] = [];
  if (!has(raw, 'tags')) c.add(`${p}.tags`, 'required');
  else {
    const v = raw.tags;
    const list = typeof v === 'string' ? [v] : v;
    if (!Array.isArray(list)) c.add(`${p}.tags`, `must be a list of tag templates, not ${describe(v)}`);
    else if (list.length === 0) c.add(`${p}.tags`, 'must not be empty (give at least one tag template)');
    else
      list.forEach((t, i) => {
        const tp = typeof v === 'string' ? `${p}.tags` : `${p}.tags[${i}]`;
        if (typeof t !== 'string') return c.add(tp, `must be a string (quote it in YAML), not ${describe(t)}`);
        if (t === '') return c.add(tp, 'must not be empty');
        const parsed = parseTemplate(t);
        if (!parsed.ok) return c.add(tp, parsed.message);
        if (parsed.template.literal && !isValidDockerTag(t)) {
          return c.add(tp, `${JSON.stringify(t)} is not a valid Docker tag (letters, digits, _ . -; not starting with . or -; at most 128)`);
        }
        const gp = groupProblem(parsed.template);
        if (gp) return c.add(tp, gp);
        tags.push(parsed.template);
        tagTexts.push(t);
      });
  }

  let context = '.';
  if (has(raw, 'context')) {
    const v = c.string(raw, 'context', p);
    if (v !== undefined) {
      const n = normalisePath(v, 'repository');
      if ('message' in n) c.add(`${p}.context`, n.message);
      else context = n.path;
    }
  }
  let dockerfile = 'Dockerfile';
  if (has(raw, 'dockerfile')) {
    const v = c.string(raw, 'dockerfile', p);
    if (v !== undefined) {
      const n = normalisePath(v, 'context');
      if ('message' in n) c.add(`${p}.dockerfile`, n.message);
      else if (n.path === '.') c.add(`${p}.dockerfile`, 'must name a file inside the context');
      else dockerfile = n.path;
    }
  }

  const buildArgs: [string, Template][] = [];
  const buildArgTexts: Record<string, string> = {};
  const args = c.stringMap(raw, 'build_args', p, BUILD_ARG, 'letters, digits, _ . -, not starting with a digit');
  for (const [k, val] of Object.entries(args)) {
    const ap = `${p}.build_args.${k}`;
    const parsed = parseTemplate(val);
    if (!parsed.ok) {
      c.add(ap, parsed.message);
      continue;
    }
    const gp = groupProblem(parsed.template);
    if (gp) {
      c.add(ap, gp);
      continue;
    }
    buildArgs.push([k, parsed.template]);
    buildArgTexts[k] = val;
  }

  let paths: string[] | undefined;
  if (has(raw, 'paths')) {
    const v = raw.paths;
    if (!Array.isArray(v)) c.add(`${p}.paths`, `must be a list of globs, not ${describe(v)}`);
    else if (v.length === 0) c.add(`${p}.paths`, 'must not be empty (leave it out to build on any change)');
    else {
      paths = [];
      v.forEach((g, i) => {
        const gp = `${p}.paths[${i}]`;
        if (typeof g !== 'string' || g === '') return c.add(gp, `must be a non-empty glob string, not ${describe(g)}`);
        const compiled = compilePathGlob(g);
        if (!compiled.ok) return c.add(gp, compiled.message);
        paths!.push(g);
      });
    }
  }

  const autobuild = c.bool(raw, 'autobuild', p, true);
  const cache = c.bool(raw, 'cache', p, false);
  const target = c.string(raw, 'target', p);
  if (target !== undefined && !STAGE_NAME.test(target)) {
    c.add(`${p}.target`, `${JSON.stringify(target)} is not a Dockerfile stage name (a letter, then letters, digits, _ . -; at most 128)`);
  }
  const deploy = c.string(raw, 'deploy', p);
  if (deploy !== undefined && !has(environments, deploy)) {
    const known = Object.keys(environments);
    c.add(`${p}.deploy`, `unknown environment ${JSON.stringify(deploy)} (${known.length ? `environments: ${known.join(', ')}` : 'no environments are defined'})`);
  }

  if (name === undefined || source === undefined) return null;
  const rule: Rule = {
    name,
    source,
    ...(match !== undefined ? { match } : {}),
    ...(semverText !== undefined ? { semver: semverText } : {}),
    tags: tagTexts,
    dockerfile,
    context,
    build_args: buildArgTexts,
    ...(paths ? { paths } : {}),
    autobuild,
    cache,
    ...(target !== undefined ? { target } : {}),
    ...(deploy !== undefined ? { deploy } : {}),
  };
  return { rule, matcher, range, tags, buildArgs };
}
