import type { RepoStore } from '../store/index.js';
import type { RepoConfigSource } from './deployer.js';

/** Reads environments from the stored repository configs (the normalised documents src/rules produced). */
export function repoConfigSource(repos: Pick<RepoStore, 'get'>): RepoConfigSource {
  return {
    async get(repo) {
      const stored = await repos.get(repo);
      if (!stored) return null;
      return { repo: stored.repo, config: stored.config };
    },
  };
}
