import { Octokit } from '@octokit/rest';
import type { Logger } from 'pino';
import type { BuildRecord, DeploymentRecord } from '../store/index.js';
import { commitStatusFor, deploymentRequestFor, deploymentStatusFor } from './feedback.js';
import { memoryDeploymentLinks, type DeploymentLinks } from './links.js';
import { githubHostOf, reportTarget, type GitHubRepository } from './source-repo.js';

/** Tells GitHub about builds (commit statuses) and rollouts (deployments and their statuses). */
export interface GitHubReporter {
  /**
   * Reports the build's current state as a commit status on its sha, in the GitHub repository its
   * source was fetched from (none when it came from elsewhere). Never rejects.
   */
  reportBuild(build: BuildRecord): Promise<void>;
  /**
   * Reports the rollout's current state as a deployment status, creating the GitHub deployment
   * on first sight. `build` is the build whose commit the digest came from (a GitHub deployment
   * needs a commit); without it, or when that build's source is not on GitHub, nothing is reported.
   * The deployment goes to the build's source repository, as its commit statuses do. Never rejects.
   */
  reportDeployment(deployment: DeploymentRecord, build?: BuildRecord | null): Promise<void>;
}

export interface GitHubReporterOptions {
  /** A token allowed to write commit statuses and deployments (`repo:status`, `repo_deployment`). */
  token: string;
  /** GitHub's REST API; GitHub Enterprise Server: `https://HOST/api/v3`. Default https://api.github.com. */
  baseUrl?: string;
  /**
   * The host whose repositories that API serves: only builds fetched from `https://<host>/<owner>/<name>[.git]`
   * are reported, to that owner/name. Default github.com for api.github.com, else the API's own host.
   */
  githubHost?: string;
  /** Where people open slipway's dashboard; the links GitHub shows point there. */
  publicUrl: string;
  /** Keeps GitHub deployment ids; default in this process's memory (use the Redis one across processes). */
  links?: DeploymentLinks;
  log: Pick<Logger, 'warn' | 'info' | 'debug'>;
  /** Time allowed for one GitHub request. Default 10 s. */
  timeoutMs?: number;
}

/** Enough to cover every build and rollout reporting at once; an older one may log its skip again. */
const SKIPS_REMEMBERED = 10_000;

/**
 * GitHub's answers never decide anything in slipway: failures (GitHub down, a bad token, a
 * repository GitHub does not know) are logged and swallowed, so a build or a rollout never
 * fails or waits long because of them.
 */
export function createGitHubReporter(opts: GitHubReporterOptions): GitHubReporter {
  const { publicUrl, log } = opts;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const links = opts.links ?? memoryDeploymentLinks();
  const baseUrl = opts.baseUrl ?? 'https://api.github.com';
  const githubHost = opts.githubHost ?? githubHostOf(baseUrl);
  const octokit = new Octokit({
    auth: opts.token,
    baseUrl,
    userAgent: 'slipway',
    // Octokit's own request log goes to debug; failures are reported once, below, with context.
    log: {
      debug: (msg: string) => log.debug({ github: msg }, 'github request'),
      info: (msg: string) => log.debug({ github: msg }, 'github request'),
      warn: (msg: string) => log.debug({ github: msg }, 'github warning'),
      error: (msg: string) => log.debug({ github: msg }, 'github error'),
    },
  });
  const request = () => ({ signal: AbortSignal.timeout(timeoutMs) });
  // One GitHub deployment per rollout even when two state changes of it are reported at once.
  const creating = new Map<string, Promise<number>>();

  async function safely(what: string, context: Record<string, unknown>, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      const status = (err as { status?: unknown }).status;
      log.warn(
        { ...context, status: typeof status === 'number' ? status : undefined, err: (err as Error).message },
        `GitHub ${what} not reported`,
      );
    }
  }

  // A build reports each of its states: why one is not reported is logged once per build (or rollout).
  const skipsLogged = new Set<string>();
  function targetOf(what: string, key: string, context: Record<string, unknown>, build: BuildRecord): GitHubRepository | null {
    const target = reportTarget(build.cloneUrl, githubHost);
    if ('to' in target) return target.to;
    if (!skipsLogged.has(key)) {
      if (skipsLogged.size >= SKIPS_REMEMBERED) skipsLogged.delete(skipsLogged.values().next().value!);
      skipsLogged.add(key);
      log.info(context, `${what} skipped: ${target.skip}`);
    }
    return null;
  }

  async function githubDeploymentId(deployment: DeploymentRecord, build: BuildRecord, target: GitHubRepository): Promise<number> {
    const known = await links.get(deployment.id);
    if (known !== null) return known;
    let pending = creating.get(deployment.id);
    if (!pending) {
      pending = (async () => {
        const response = await octokit.rest.repos.createDeployment({
          ...target,
          ...deploymentRequestFor(deployment, build),
          // slipway already built and checked this commit: no merge of the default branch, no status gate.
          auto_merge: false,
          required_contexts: [],
          request: request(),
        });
        // 202 means GitHub merged instead of deploying; with auto_merge off it does not happen.
        const id = 'id' in response.data ? response.data.id : null;
        if (id === null) throw new Error(`GitHub created no deployment: ${JSON.stringify(response.data)}`);
        await links.set(deployment.id, id);
        return id;
      })().finally(() => creating.delete(deployment.id));
      creating.set(deployment.id, pending);
    }
    return pending;
  }

  return {
    reportBuild(build) {
      const context = { repo: build.repo, build: build.id, status: build.status };
      return safely('commit status', context, async () => {
        const target = targetOf('GitHub commit status', `build:${build.id}`, context, build);
        if (!target) return;
        await octokit.rest.repos.createCommitStatus({
          ...target,
          sha: build.sha,
          ...commitStatusFor(build, publicUrl),
          request: request(),
        });
      });
    },

    reportDeployment(deployment, build) {
      const context = { repo: deployment.repo, deployment: deployment.id, environment: deployment.environment };
      return safely('deployment status', context, async () => {
        if (!build) {
          log.debug(context, 'GitHub deployment not reported: the commit of this digest is not known');
          return;
        }
        const target = targetOf('GitHub deployment', `deployment:${deployment.id}`, { ...context, build: build.id }, build);
        if (!target) return;
        const id = await githubDeploymentId(deployment, build, target);
        await octokit.rest.repos.createDeploymentStatus({
          ...target,
          deployment_id: id,
          ...deploymentStatusFor(deployment, publicUrl),
          request: request(),
        });
      });
    },
  };
}
