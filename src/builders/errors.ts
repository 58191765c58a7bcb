/**
 * Why a build failed, as a stable `code` plus a one-line message a person can act on.
 * Lanes map these to record status: `retryable` errors may be retried, the rest end the build `failed`.
 */
export type BuildErrorCode =
  | 'source_invalid' // bad clone URL or sha
  | 'source_unreachable' // git could not fetch the commit
  | 'context_invalid' // context/dockerfile missing or outside the repository
  | 'build_failed' // a Dockerfile step failed
  | 'registry_auth' // the registry refused our credentials
  | 'push_failed' // any other push or tagging failure
  | 'timeout' // builder.timeout elapsed
  | 'engine_failed' // the builder engine could not start or died
  | 'cancelled'; // the build's signal aborted without a reason of its own

export class BuildError extends Error {
  override readonly name = 'BuildError';
  constructor(
    readonly code: BuildErrorCode,
    message: string,
    readonly retryable = false,
  ) {
    super(oneLine(message));
  }
}

/** Collapses whitespace and cuts very long messages: a build record's `error` is one line. */
export function oneLine(text: string, max = 500): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}
