import type { BuildRecord } from '../store/records.js';

/** Where a running build writes its output; implemented over a Redis stream per build. */
export interface BuildLog {
  /** One line of output (no trailing newline). */
  line(text: string): void;
  /** Marks the start of a named step; the log shows it with timing. */
  step(name: string): void;
}

export interface BuildOutcome {
  /** The pushed manifest digest, `sha256:<hex>`. */
  digest: string;
}

/**
 * Runs one build from source fetch to pushed digest. Lanes call it; src/builders implements it.
 * It must stop promptly and clean up when `signal` aborts (cancel, supersede, shutdown),
 * and throw a typed error (see src/queue errors) on failure.
 */
export interface BuildRunner {
  run(build: BuildRecord, ctx: { signal: AbortSignal; log: BuildLog }): Promise<BuildOutcome>;
}
