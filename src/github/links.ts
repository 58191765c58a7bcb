import type { Redis } from 'ioredis';

/**
 * Which GitHub deployment stands for which slipway rollout, so every state change of a rollout
 * lands on the same GitHub deployment, whichever process reports it.
 */
export interface DeploymentLinks {
  get(deploymentId: string): Promise<number | null>;
  set(deploymentId: string, githubDeploymentId: number): Promise<void>;
}

/** For one process (tests, `slipway up`). */
export function memoryDeploymentLinks(): DeploymentLinks {
  const links = new Map<string, number>();
  return {
    get: async (id) => links.get(id) ?? null,
    set: async (id, githubId) => {
      links.set(id, githubId);
    },
  };
}

/** A rollout is reported for minutes; a month covers any redelivery of late state changes. */
const LINK_TTL_SECONDS = 30 * 24 * 3600;

/** Shared by every serve/worker process on one Redis. */
export function redisDeploymentLinks(redis: Redis, prefix = 'slipway:'): DeploymentLinks {
  const key = (id: string) => `${prefix}github:deployment:${id}`;
  return {
    get: async (id) => {
      const value = await redis.get(key(id));
      return value === null ? null : Number(value);
    },
    set: async (id, githubId) => {
      await redis.set(key(id), String(githubId), 'EX', LINK_TTL_SECONDS);
    },
  };
}
