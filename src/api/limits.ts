import { ApiError } from './errors.js';

/**
 * Open event streams (`/api/events`, followed build logs) per token: each holds a connection, so
 * one token may hold at most `perToken` at once.
 */
export class StreamLimits {
  private readonly open = new Map<string, number>();

  constructor(private readonly perToken: number) {}

  /** Counts a stream for `token` (its name) until the returned release runs; 429 past the limit. */
  take(token: string): () => void {
    const n = this.open.get(token) ?? 0;
    if (n >= this.perToken) {
      throw new ApiError(429, `too many open streams: token "${token}" already holds ${n} (at most ${this.perToken}); close some first`, 'too_many_streams');
    }
    this.open.set(token, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(token) ?? 1) - 1;
      if (left <= 0) this.open.delete(token);
      else this.open.set(token, left);
    };
  }
}

/**
 * Failed authentications per client address in a sliding minute: past `perMinute`, that address is
 * answered 429 (with Retry-After) before its token is even looked up, so guessing tokens is slow.
 */
export class AuthThrottle {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly perMinute: number,
    private readonly clock: () => Date,
  ) {}

  /** Throws 429 while `address` is over its budget. */
  check(address: string): void {
    const recent = this.recent(address);
    if (recent.length >= this.perMinute) {
      const retry = Math.max(1, Math.ceil((recent[0]! + 60_000 - this.clock().getTime()) / 1000));
      throw new ApiError(429, `too many failed authentications from ${address}: try again in ${retry} s`, 'too_many_failures', [], retry);
    }
  }

  failed(address: string): void {
    const recent = this.recent(address);
    recent.push(this.clock().getTime());
    this.failures.set(address, recent);
    // Bounded memory: addresses with nothing recent are forgotten as others fail.
    if (this.failures.size > 10_000) for (const [a, times] of this.failures) if (this.recentOf(times).length === 0) this.failures.delete(a);
  }

  private recent(address: string): number[] {
    return this.recentOf(this.failures.get(address) ?? []);
  }

  private recentOf(times: number[]): number[] {
    const since = this.clock().getTime() - 60_000;
    return times.filter((t) => t > since);
  }
}

/** An SSE `data:` field for any text: each line its own `data:` line, so no text can start a field of its own. */
export function sseData(text: string): string {
  return text.split(/\r\n|\r|\n/).map((line) => `data: ${line}`).join('\n');
}
