/** GitHub feedback: commit statuses for builds, deployments and deployment statuses for rollouts. */
export { createGitHubReporter, type GitHubReporter, type GitHubReporterOptions } from './reporter.js';
export { redisDeploymentLinks, type DeploymentLinks } from './links.js';
export { type CommitStatus, type CommitState, type DeploymentState } from './feedback.js';
export { githubEventReporter, type GitHubEventOptions } from './events.js';
