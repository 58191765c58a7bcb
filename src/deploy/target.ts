import type { EnvironmentSpec } from '../rules/index.js';
import type { DeploymentRecord } from '../store/records.js';

/** Where a rollout lands. Swarm today (swarm-target.ts); the same shape fits a Kubernetes Deployment. */
export interface RolloutRequest {
  repo: string;
  environment: string;
  config: EnvironmentSpec;
  /** Always `repository@sha256:<hex>`: a digest, never a tag. */
  imageRef: string;
  deploymentId: string;
  revision: number;
  /** When the rollout began (epoch ms): a rollback Swarm started after this belongs to it. */
  since: number;
}

export type RolloutOutcome =
  /**
   * `confirming`: every task runs the new image and stayed healthy for the monitor window (what
   * `docker service update` waits for), while Swarm still watches for the update's trailing delay;
   * `confirm()` follows that tail.
   */
  | { status: 'succeeded'; confirming?: boolean }
  | { status: 'rolled_back'; reason: string }
  | { status: 'failed'; reason: string };

export interface RunningState {
  /** The image the service's spec names now, or null when the service does not exist. */
  imageRef: string | null;
  /** The deployment whose spec is applied now (from the service's labels). */
  deploymentId: string | null;
  /** True while the orchestrator is still moving tasks (updating or rolling back). */
  rolling: boolean;
  /** Swarm's update state (`updating`, `completed`, `rollback_completed`, …) and when that update started. */
  updateState: string | null;
  updateStartedAt: number | null;
}

/** One Swarm task of an environment's service, as `GET /api/deployments/{id}` shows it during a rollout. */
export interface TaskView {
  id: string;
  /** The replica slot (null for global services). */
  slot: number | null;
  /** Swarm's task state: `new`, `pending`, `preparing`, `starting`, `running`, `shutdown`, `failed`, … */
  state: string;
  desiredState: string;
  /** The digest the task runs (`sha256:<hex>`), null when its image is not pinned by digest. */
  digest: string | null;
  /** Why it failed (Status.Err), else Swarm's status message. */
  message: string;
}

export interface SettleOptions {
  /**
   * Answer `rolled_back` as soon as the orchestrator starts rolling this rollout back, not once that
   * rollback ends: a release undoes its other services meanwhile, and follows this one's rollback as
   * the restore of its previous spec.
   */
  rollbackStarted?: boolean;
}

export interface Target {
  /** Creates or updates the environment's service (and its traffic entry) to `imageRef`; returns once accepted. */
  apply(req: RolloutRequest): Promise<void>;
  /**
   * Follows the rollout of `req` until it settles, also when another process applied it (restart).
   * Past `deadlineAt` (epoch ms) the target rolls the service back itself and reports `failed`.
   */
  settle(req: RolloutRequest, deadlineAt: number, signal?: AbortSignal, opts?: SettleOptions): Promise<RolloutOutcome>;
  /**
   * After a `confirming` success: waits until the orchestrator itself ends the update. Answers
   * `succeeded`, or how it ended otherwise (a rollback in the trailing window).
   */
  confirm(req: RolloutRequest, deadlineAt: number, signal?: AbortSignal): Promise<RolloutOutcome>;
  /**
   * Runs a release's `job` service (`req.config`) once to completion: replaces an earlier release's run,
   * follows this release's if one is under way (a restarted worker). `failed` names the exit and the last output.
   */
  runJob(req: RolloutRequest, deadlineAt: number, signal?: AbortSignal): Promise<RolloutOutcome>;
  state(config: EnvironmentSpec): Promise<RunningState>;
  /** The environment's service's tasks now (empty when the service does not exist). */
  tasks(config: EnvironmentSpec): Promise<TaskView[]>;
  /** Removes everything the environment owns (service, proxy, network, configs). */
  remove(repo: string, config: EnvironmentSpec): Promise<void>;
}

/** The rollout of `record` to `config` with `imageRef` (default: the record's own image and digest). */
export function rolloutRequest(record: DeploymentRecord, config: EnvironmentSpec, imageRef = `${record.image}@${record.digest}`): RolloutRequest {
  return {
    repo: record.repo,
    environment: record.environment,
    config,
    imageRef,
    deploymentId: record.id,
    revision: record.revision,
    since: Date.parse(record.startedAt ?? '') || Date.now(),
  };
}

/**
 * Whether the orchestrator already took `req` on (its spec is applied, or Swarm is rolling it back):
 * a worker resuming a rollout its predecessor applied follows it instead of applying it again.
 */
export function takenOn(state: RunningState, req: RolloutRequest): boolean {
  const rollbackOfIt = state.updateState?.startsWith('rollback') === true && (state.updateStartedAt ?? 0) >= req.since - 5000;
  return state.deploymentId === req.deploymentId || rollbackOfIt;
}
