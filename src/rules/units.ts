/** Durations (`500ms`, `2s`, `1m`, `1.5h`) and memory sizes (`512m`, `2g`) as users write them. */

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const DURATION_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** Milliseconds, or null when the text is not a duration. */
export function parseDuration(text: string): number | null {
  const m = DURATION.exec(text);
  if (!m) return null;
  return Math.round(Number(m[1]) * DURATION_MS[m[2] as keyof typeof DURATION_MS]);
}

const MEMORY = /^(\d+(?:\.\d+)?)([bkmg]?)$/i;
const MEMORY_BYTES = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as const;

/** Bytes, or null: Docker's `--memory` notation (b, k, m, g; no unit = bytes). */
export function parseMemory(text: string): number | null {
  const m = MEMORY.exec(text);
  if (!m) return null;
  const bytes = Math.floor(Number(m[1]) * MEMORY_BYTES[m[2]!.toLowerCase() as keyof typeof MEMORY_BYTES]);
  return bytes > 0 ? bytes : null;
}
