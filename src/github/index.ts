/** GitHub feedback: commit statuses for builds, deployments and deployment statuses for rollouts. */
export { createGitHubReporter, silentGitHubReporter, type GitHubReporter, type GitHubReporterOptions } from './reporter.js';
export { memoryDeploymentLinks, redisDeploymentLinks, type DeploymentLinks } from './links.js';
export {
  commitStatusFor,
  deploymentRequestFor,
  deploymentStatusFor,
  statusContext,
  buildUrl,
  environmentUrl,
  type CommitStatus,
  type CommitState,
  type DeploymentState,
} from './feedback.js';
export { githubEventReporter, type GitHubEventOptions } from './events.js';
