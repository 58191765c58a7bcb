// Data helpers several pages share: environments of a repository and the build behind a digest.
import { get, listOf, repoPath } from '../api.js';

export const ACTIVE_ROLLOUT = new Set(['pending', 'running']);
export const ACTIVE_BUILD = new Set(['queued', 'running']);

export async function loadEnvironments(repo, config, signal) {
  const names = Object.keys(config?.environments ?? {});
  let envs = [];
  try {
    envs = listOf(await get(`/api/repos/${repoPath(repo)}/environments`, { signal }), 'environments');
  } catch (err) {
    if (err?.name === 'AbortError') throw err;
  }
  const have = new Set(envs.map((e) => e.name));
  const missing = names.filter((n) => !have.has(n));
  const more = await Promise.all(missing.map((n) =>
    get(`/api/repos/${repoPath(repo)}/environments/${encodeURIComponent(n)}`, { signal }).catch(() => ({ name: n, service: config.environments[n]?.service, current: null, history: [] }))));
  const all = [...envs, ...more];
  // Config order first: people list staging before production.
  return all.sort((a, b) => orderOf(names, a.name) - orderOf(names, b.name));
}

const orderOf = (names, n) => (names.includes(n) ? names.indexOf(n) : names.length);

/** Builds by id, fetched once per page (a build's tags and digest never change once pushed). */
export function buildCache(signal) {
  const cache = new Map();
  return (id) => {
    if (!id) return Promise.resolve(null);
    if (!cache.has(id)) cache.set(id, get(`/api/builds/${encodeURIComponent(id)}`, { signal }).catch(() => null));
    return cache.get(id);
  };
}

/** The tags of a deployment's image: from the build it came from, else from a build with that digest. */
export async function tagsOf(deployment, builds, buildById) {
  if (!deployment) return [];
  const b = deployment.build ? await buildById(deployment.build) : null;
  if (b?.tags) return b.tags;
  return builds.find((x) => x.digest && x.digest === deployment.digest)?.tags ?? [];
}

export function repoName(item) {
  return typeof item === 'string' ? item : item?.repository ?? item?.repo ?? item?.name;
}
