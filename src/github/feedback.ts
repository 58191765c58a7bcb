import type { BuildRecord, DeploymentRecord } from '../store/index.js';

/**
 * What GitHub is told about a build or a rollout: pure mappings from slipway's records to the
 * bodies of GitHub's commit-status and deployment(-status) endpoints (docs/github.md).
 */

export type CommitState = 'pending' | 'success' | 'failure' | 'error';
export type DeploymentState = 'queued' | 'in_progress' | 'success' | 'failure';

export interface CommitStatus {
  state: CommitState;
  context: string;
  description: string;
  target_url: string;
}

export interface DeploymentRequest {
  ref: string;
  environment: string;
  description: string;
  payload: { slipway: { deployment: string; revision: number; image: string; digest: string; build: string | null } };
}

export interface DeploymentStatusBody {
  state: DeploymentState;
  description: string;
  log_url: string;
}

/** GitHub refuses descriptions over 140 characters. */
const DESCRIPTION_MAX = 140;

export function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= DESCRIPTION_MAX ? flat : `${flat.slice(0, DESCRIPTION_MAX - 1)}…`;
}

/** `https://slipway.example.com/` and `https://slipway.example.com` give the same links. */
function base(publicUrl: string): string {
  return publicUrl.replace(/\/+$/, '');
}

/**
 * One context per build of a push: the names of the rules it carries (unique within a config,
 * and each rule makes at most one build of an event), else the image for a build without rules.
 */
export function statusContext(build: Pick<BuildRecord, 'rules' | 'image'>): string {
  return `slipway/${build.rules.length > 0 ? build.rules.join('+') : build.image}`;
}

export function buildUrl(publicUrl: string, buildId: string): string {
  return `${base(publicUrl)}/#/builds/${encodeURIComponent(buildId)}`;
}

export function environmentUrl(publicUrl: string, repo: string, environment: string): string {
  const repoPath = repo.split('/').map(encodeURIComponent).join('/');
  return `${base(publicUrl)}/#/repos/${repoPath}/environments/${encodeURIComponent(environment)}`;
}

export function commitStatusFor(build: BuildRecord, publicUrl: string): CommitStatus {
  const [state, description] = buildState(build);
  return { state, context: statusContext(build), description: oneLine(description), target_url: buildUrl(publicUrl, build.id) };
}

function buildState(build: BuildRecord): [CommitState, string] {
  switch (build.status) {
    case 'queued':
      return ['pending', 'Queued'];
    case 'running':
      return ['pending', 'Building'];
    case 'succeeded':
      return ['success', build.tags.length > 0 ? `Pushed ${build.tags.join(', ')}` : 'Built and pushed'];
    case 'failed':
      return ['failure', build.error ? `Failed: ${build.error}` : 'Failed'];
    // Neither passed nor failed: GitHub's `error` keeps the commit from looking broken or green.
    case 'cancelled':
      return ['error', build.error ? `Cancelled: ${build.error}` : 'Cancelled'];
    case 'superseded':
      return ['error', build.supersededBy ? `Superseded by build ${build.supersededBy}` : 'Superseded by a newer push'];
  }
}

/** The GitHub deployment for a rollout; it needs the commit, so only a rollout whose build is known gets one. */
export function deploymentRequestFor(deployment: DeploymentRecord, build: BuildRecord): DeploymentRequest {
  return {
    ref: build.sha,
    environment: deployment.environment,
    description: oneLine(`${deployment.trigger} by ${deployment.by}: ${deployment.image}@${deployment.digest}`),
    payload: {
      slipway: {
        deployment: deployment.id,
        revision: deployment.revision,
        image: deployment.image,
        digest: deployment.digest,
        build: build.id,
      },
    },
  };
}

export function deploymentStatusFor(deployment: DeploymentRecord, publicUrl: string): DeploymentStatusBody {
  const [state, description] = deploymentState(deployment);
  return { state, description: oneLine(description), log_url: environmentUrl(publicUrl, deployment.repo, deployment.environment) };
}

function deploymentState(d: DeploymentRecord): [DeploymentState, string] {
  switch (d.status) {
    case 'pending':
      return ['queued', `Revision ${d.revision} queued`];
    case 'running':
      return ['in_progress', `Rolling out revision ${d.revision}`];
    case 'succeeded':
      return ['success', `Revision ${d.revision} is live`];
    case 'rolled_back':
      return ['failure', `Rolled back: ${d.error ?? 'the new revision failed its health checks'}`];
    case 'failed':
      return ['failure', `Failed: ${d.error ?? 'rollout failed'}`];
  }
}
