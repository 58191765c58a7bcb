/**
 * Typed errors of the lanes. A `BuildRunner` throws them (or sees them as its AbortSignal's
 * `reason`); the lanes map them to a record's final status at one place (worker.ts), and the API
 * maps `status` to HTTP. `code` is stable and safe to match on; `retryable` says whether another
 * attempt of the same build could succeed.
 */
export abstract class LaneError extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The build was cancelled by a person (or by the API on their behalf). */
export class BuildCancelled extends LaneError {
  readonly code = 'build_cancelled';
  readonly retryable = false;
  constructor(readonly by: string) {
    super(`cancelled by ${by}`);
  }
}

/** A newer push to the same ref replaced this build. */
export class Superseded extends LaneError {
  readonly code = 'superseded';
  readonly retryable = false;
  constructor(readonly by: string) {
    super(`superseded by build ${by}`);
  }
}

/** The build ran longer than its time limit. */
export class BuildTimeout extends LaneError {
  readonly code = 'build_timeout';
  readonly retryable = false;
  constructor(readonly limitMs: number) {
    super(`timed out after ${humanDuration(limitMs)}`);
  }
}

/** Whole seconds (`timed out after 1800 s`), milliseconds only below one second. */
function humanDuration(ms: number): string {
  return ms < 1_000 ? `${ms} ms` : `${Math.round(ms / 1_000)} s`;
}

/** A failure that another attempt would repeat (bad Dockerfile, failing RUN step, missing base image). */
export class NonRetryableBuildError extends LaneError {
  readonly retryable = false;
  constructor(
    message: string,
    readonly code: string = 'build_failed',
  ) {
    super(message);
  }
}

/** A transient infrastructure failure (engine or registry unreachable); the lane tries the build again. */
export class RetryableBuildError extends LaneError {
  readonly retryable = true;
  constructor(
    message: string,
    readonly code: string = 'build_infra',
  ) {
    super(message);
  }
}

/** The worker is stopping: the build goes back to its lane (same record) for another worker. */
export class WorkerStopping extends LaneError {
  readonly code = 'worker_stopping';
  readonly retryable = true;
  constructor() {
    super('worker is shutting down; build handed back to the queue');
  }
}

/** No build with that id. HTTP 404. */
export class BuildNotFound extends LaneError {
  readonly code = 'build_not_found';
  readonly retryable = false;
  readonly status = 404;
  constructor(readonly id: string) {
    super(`no build ${id}`);
  }
}

/** The build has already ended (or the request conflicts with its state). HTTP 409. */
export class ConflictError extends LaneError {
  readonly code: string;
  readonly retryable = false;
  readonly status = 409;
  constructor(message: string, code = 'build_ended') {
    super(message);
    this.code = code;
  }
}

/** Invalid input to the lanes (a record that is not a new queued build, a duplicate id). HTTP 400. */
export class InvalidSubmission extends LaneError {
  readonly code = 'invalid_submission';
  readonly retryable = false;
  readonly status = 400;
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
  }
}
