import type { BuildRecord, SlipwayEvent } from '../store/index.js';
import type { GitHubReporter } from './reporter.js';

export interface GitHubEventOptions {
  /** Finds the build a rollout's digest came from (its commit is the GitHub deployment's ref). */
  findBuild(id: string): Promise<BuildRecord | null>;
  /** Called when looking the build up fails; GitHub reporting never throws. */
  onError?(err: unknown): void;
}

/**
 * Turns slipway's state-change events into GitHub feedback. Call the returned function wherever
 * an event is published (each state change is published once, by the process that made it), so
 * every change is reported once. Fire-and-forget: it never throws and never delays the caller.
 */
export function githubEventReporter(reporter: GitHubReporter, opts: GitHubEventOptions): (event: SlipwayEvent) => void {
  return (event) => {
    if (event.type === 'build') {
      void reporter.reportBuild(event.record);
      return;
    }
    const deployment = event.record;
    void (async () => {
      const build = deployment.build ? await opts.findBuild(deployment.build) : null;
      await reporter.reportDeployment(deployment, build);
    })().catch((err: unknown) => opts.onError?.(err));
  };
}
