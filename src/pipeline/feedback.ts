import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createGitHubReporter, githubEventReporter, redisDeploymentLinks } from '../github/index.js';
import { BuildStore, EventBus, type BuildRecord } from '../store/index.js';

export interface FeedbackSettings {
  /** SLIPWAY_GITHUB_STATUS_TOKEN (or the clone token for github.com); unset: no GitHub feedback. */
  githubStatusToken?: string | undefined;
  githubApiUrl?: string | undefined;
  /** Where people open slipway: the links in statuses. */
  publicUrl: string;
}

/**
 * The event bus of one process: what builds and rollouts do reaches dashboards (SSE) and, with a
 * GitHub token, GitHub as commit and deployment statuses, reported once by the process that made
 * the change rather than by every subscriber.
 */
export function createFeedbackBus(redis: Redis, settings: FeedbackSettings, log: Logger): EventBus {
  if (!settings.githubStatusToken) return new EventBus(redis);
  const builds = new BuildStore(redis);
  const reporter = createGitHubReporter({
    token: settings.githubStatusToken,
    ...(settings.githubApiUrl ? { baseUrl: settings.githubApiUrl } : {}),
    publicUrl: settings.publicUrl,
    links: redisDeploymentLinks(redis),
    log: log.child({ part: 'github' }),
  });
  const onPublish = githubEventReporter(reporter, {
    findBuild: (id) => builds.get(id),
    onError: (err) => log.warn({ err: (err as Error).message }, 'GitHub feedback not sent'),
  });
  return new EventBus(redis, { onPublish });
}

/** Build state changes go out on the event bus; a lost event never fails a build. */
export function publishBuilds(events: EventBus, log: Pick<Logger, 'warn'>): (record: BuildRecord) => void {
  return (record) => {
    events.publish({ type: 'build', record }).catch((err: Error) => log.warn({ err: err.message, build: record.id }, 'event not published'));
  };
}
