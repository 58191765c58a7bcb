import { Minimatch } from 'minimatch';

/** How a rule's `match` is tested against a sourceref. */
export type Matcher =
  | { kind: 'exact'; value: string }
  | { kind: 'any' }
  | { kind: 'glob'; glob: Glob }
  | { kind: 'regex'; re: RegExp; groupCount: number; groupNames: ReadonlySet<string> };

const GLOB_CHARS = /[*?[\]{}!]/;
const REGEX_FLAGS = /^[imsu]*$/;
// In `match`, `/` is an ordinary character (`release/*` matches `release/1.x`): both the pattern
// and the name have `/` swapped for a character that git never allows in a ref, so minimatch
// sees one path segment.
const SLASH_STAND_IN = '\u0001';

export type MatcherParse = { ok: true; matcher: Matcher } | { ok: false; message: string };

export function compileMatch(match: string): MatcherParse {
  if (match.startsWith('/')) return compileRegex(match);
  if (match === '*') return { ok: true, matcher: { kind: 'any' } }; // `*` matches every name
  if (GLOB_CHARS.test(match)) {
    if (match.includes(SLASH_STAND_IN)) return { ok: false, message: 'control characters are not allowed' };
    const mm = new Minimatch(match.replaceAll('/', SLASH_STAND_IN), { dot: true, nocomment: true });
    if (!globCompiled(mm, match)) return { ok: false, message: `invalid glob ${JSON.stringify(match)}` };
    return { ok: true, matcher: { kind: 'glob', glob: new Glob(mm, SLASH_STAND_IN) } };
  }
  return { ok: true, matcher: { kind: 'exact', value: match } };
}

function compileRegex(match: string): MatcherParse {
  const last = match.lastIndexOf('/');
  if (last === 0) {
    return { ok: false, message: 'invalid regular expression: write it as /pattern/flags (the closing "/" is missing)' };
  }
  const flags = match.slice(last + 1);
  if (!REGEX_FLAGS.test(flags) || new Set(flags).size !== flags.length) {
    return { ok: false, message: `invalid regular expression flags ${JSON.stringify(flags)}: use distinct letters from i, m, s, u` };
  }
  const body = match.slice(1, last);
  let re: RegExp;
  let probe: RegExpExecArray;
  try {
    re = new RegExp(body, flags);
    // An empty alternative always matches, so exec('') reveals every group (numbered and named).
    probe = new RegExp(`(?:${body})|`, flags).exec('')!;
  } catch (err) {
    return { ok: false, message: `invalid regular expression: ${(err as Error).message}` };
  }
  return {
    ok: true,
    matcher: { kind: 'regex', re, groupCount: probe.length - 1, groupNames: new Set(Object.keys(probe.groups ?? {})) },
  };
}

/** null: no match; otherwise the regex match (for capture groups) or `true`. */
export function testMatch(m: Matcher, sourceref: string): RegExpExecArray | true | null {
  switch (m.kind) {
    case 'exact':
      return sourceref === m.value ? true : null;
    case 'any':
      return true;
    case 'glob':
      return m.glob.test(sourceref) ? true : null;
    case 'regex':
      return m.re.exec(sourceref);
  }
}

const GLOB_MEMO_LIMIT = 4096;

/**
 * A compiled minimatch pattern that remembers its answers: branch names and changed paths repeat
 * from push to push, and minimatch's matcher costs about a microsecond per test. The answer for a
 * name never changes, so the memo (bounded; cleared when full) cannot change a result.
 */
export class Glob {
  readonly mm: Minimatch;
  readonly #slashStandIn: string | null;
  readonly #memo = new Map<string, boolean>();

  constructor(mm: Minimatch, slashStandIn: string | null = null) {
    this.mm = mm;
    this.#slashStandIn = slashStandIn;
  }

  test(name: string): boolean {
    let hit = this.#memo.get(name);
    if (hit === undefined) {
      hit = this.mm.match(this.#slashStandIn === null ? name : name.replaceAll('/', this.#slashStandIn));
      if (this.#memo.size >= GLOB_MEMO_LIMIT) this.#memo.clear();
      this.#memo.set(name, hit);
    }
    return hit;
  }
}

/** minimatch takes nearly any text as a pattern; a bare `!` or one that expands to nothing is refused. */
export function globCompiled(mm: Minimatch, pattern: string): boolean {
  return pattern.replace(/^!+/, '') !== '' && mm.set.length > 0;
}
