/** Progress output of the demo: numbered steps, indented detail, and log lines in a gutter. */
export class Narrator {
  private step = 0;
  constructor(private readonly total: number, private readonly out: NodeJS.WritableStream = process.stdout) {}

  title(text: string): void {
    this.out.write(`\n${text}\n${'='.repeat(text.length)}\n`);
  }

  next(text: string): void {
    this.step += 1;
    this.out.write(`\n[${this.step}/${this.total}] ${text}\n`);
  }

  info(text: string): void {
    this.out.write(`      ${text}\n`);
  }

  ok(text: string): void {
    this.out.write(`  ok  ${text}\n`);
  }

  log(line: string): void {
    this.out.write(`    │ ${line}\n`);
  }

  fail(text: string): void {
    this.out.write(`  FAIL ${text}\n`);
  }
}

/** Polls `probe` every `everyMs` until it answers a value (not undefined) or `timeoutMs` passes. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, everyMs = 500): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) {
      throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
