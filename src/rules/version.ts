import semver from 'semver';
import type { SemverPart } from './template.js';

// SemVer 2.0.0 exactly (semver.org's regex): node-semver alone would also take `v1.2.3` or `=1.2.3`.
const SEMVER2 =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;

export interface RefVersion {
  parsed: semver.SemVer;
  values: Record<SemverPart, string>;
}

/**
 * The SemVer version a sourceref names, with one leading `v` or `V` removed, or null.
 * `{version}` drops build metadata: `v1.2.3-rc.1+b5` → `1.2.3-rc.1`.
 */
export function versionOf(sourceref: string): RefVersion | null {
  const text = sourceref.startsWith('v') || sourceref.startsWith('V') ? sourceref.slice(1) : sourceref;
  const m = SEMVER2.exec(text);
  if (!m) return null;
  const parsed = semver.parse(text); // also refuses numbers beyond MAX_SAFE_INTEGER and over-long versions
  if (!parsed) return null;
  const [, major, minor, patch, prerelease] = m as unknown as [string, string, string, string, string | undefined];
  const core = `${major}.${minor}.${patch}`;
  return {
    parsed,
    values: {
      version: prerelease ? `${core}-${prerelease}` : core,
      major,
      minor,
      patch,
      prerelease: prerelease ?? '',
    },
  };
}

/** A compiled node-semver range, or the parser's complaint. */
export function compileRange(range: string): { ok: true; range: semver.Range } | { ok: false; message: string } {
  if (range.trim() === '') return { ok: false, message: 'invalid semver range: empty (use e.g. ">=1.0.0" or "*")' };
  try {
    return { ok: true, range: new semver.Range(range) };
  } catch (err) {
    return { ok: false, message: `invalid semver range ${JSON.stringify(range)}: ${(err as Error).message}` };
  }
}
