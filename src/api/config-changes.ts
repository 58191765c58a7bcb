import type { RepoConfig } from '../rules/index.js';

/** One leaf of a repository config that a change sets, alters or removes (`undefined`: absent). */
export interface ConfigChange {
  path: string;
  before: unknown;
  after: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The leaves that differ between two normalised configs, in document order; lists compare whole. */
export function configChanges(before: RepoConfig | null, after: RepoConfig): ConfigChange[] {
  const out: ConfigChange[] = [];
  const walk = (a: unknown, b: unknown, path: string) => {
    if (isObject(a) || isObject(b)) {
      // A mapping that appears or goes counts as an empty one: each of its leaves is a change.
      const [from, to] = [isObject(a) ? a : {}, isObject(b) ? b : {}];
      for (const key of new Set([...Object.keys(from), ...Object.keys(to)])) walk(from[key], to[key], path ? `${path}.${key}` : key);
    } else if (JSON.stringify(a) !== JSON.stringify(b)) {
      out.push({ path, before: a, after: b });
    }
  };
  walk(before ?? {}, after, '');
  return out;
}

/** `environments.production.replicas: 4 → 2`, for the audit log. */
export function describeChange(c: ConfigChange): string {
  const show = (v: unknown) => (v === undefined ? '(none)' : JSON.stringify(v));
  return `${c.path}: ${show(c.before)} → ${show(c.after)}`;
}

/** Fields of the repository itself that decide what reaches a protected environment. */
const GUARDED_TOP = ['image', 'source', 'builder'];

/**
 * The changes that only a deployer may make: anything in an environment that is protected before
 * or after the change (creating, editing and removing it, `protected` itself included), and the
 * image, source and builder of a repository that has a protected environment. Authority comes from
 * the stored config and the new one together, never from the new document alone.
 */
export function protectedChanges(before: RepoConfig | null, after: RepoConfig, changes: readonly ConfigChange[]): { path: string; message: string }[] {
  const isProtected = (env: string) => before?.environments[env]?.protected === true || after.environments[env]?.protected === true;
  const guardsRepo = [before, after].some((c) => c && Object.values(c.environments).some((e) => e.protected));
  const out: { path: string; message: string }[] = [];
  for (const c of changes) {
    const [top, env] = c.path.split('.');
    if (top === 'environments' && env && isProtected(env)) {
      const what = !before?.environments[env] ? 'creating' : !after.environments[env] ? 'removing' : 'changing';
      out.push({ path: c.path, message: `${what} the protected environment ${env} needs the deployer role` });
    } else if (top && GUARDED_TOP.includes(top) && guardsRepo) {
      out.push({ path: c.path, message: `changing ${top} of a repository with a protected environment needs the deployer role` });
    }
  }
  return out;
}
