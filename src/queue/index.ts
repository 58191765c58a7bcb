/**
 * Lanes: per-repository build queues on one BullMQ work queue. Design: src/queue/README.md.
 *
 * - `Lanes` (API / webhook side): `submit(builds, {concurrency, cancelSuperseded})`, `cancel(id, by)`.
 * - `LaneWorker` (worker side): runs builds with a `BuildRunner`; `start()`, `close(graceMs)`.
 * - Typed errors for runners: `BuildCancelled`, `Superseded`, `BuildTimeout`,
 *   `NonRetryableBuildError`, `RetryableBuildError` (stable `code`, `retryable`).
 */
export { Lanes, type LanesOptions, type SubmitOptions, type SubmitResult } from './lanes.js';
export { LaneWorker, type LaneWorkerOptions } from './worker.js';
export { Superseded, BuildTimeout, NonRetryableBuildError, RetryableBuildError, BuildNotFound, ConflictError, InvalidSubmission } from './errors.js';
export type { BuildRunner, BuildLog, BuildOutcome } from './runner.js';
/** Build records are read through the store; re-exported for callers that wire lanes. */
export { BuildStore, type BuildListQuery } from '../store/index.js';
export { laneKeys } from './keys.js';
