import { Minimatch } from 'minimatch';
import { RE2JS } from 're2js';

/** How a rule's `match` is tested against a sourceref. */
export type Matcher =
  | { kind: 'exact'; value: string }
  | { kind: 'any' }
  | { kind: 'glob'; glob: Glob }
  | { kind: 'regex'; re: RE2JS; groupCount: number; groupNames: ReadonlySet<string>; memo: Map<string, Captures | null> };

/** A regex match: the whole match at 0, groups by number (undefined: did not take part) and by name. */
export interface Captures {
  readonly [index: number]: string | undefined;
  readonly groups: Readonly<Record<string, string | undefined>>;
}

const RE2_FLAGS: Record<string, number> = { i: RE2JS.CASE_INSENSITIVE, m: RE2JS.MULTILINE, s: RE2JS.DOTALL, u: 0 };

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
    const bounded = globBounds(match);
    if (bounded) return { ok: false, message: bounded };
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
  // RE2 (re2js) matches in time linear in the name: no pattern a config holds can stall slipway.
  let re: RE2JS;
  try {
    re = RE2JS.compile(body, [...flags].reduce((all, f) => all | RE2_FLAGS[f]!, 0));
  } catch (err) {
    const why = (err as Error).message.replace(/^error parsing regexp: /, '');
    return {
      ok: false,
      message: `invalid regular expression: ${why} (rules use RE2 syntax, which runs in linear time: lookahead, lookbehind and backreferences are not available)`,
    };
  }
  return { ok: true, matcher: { kind: 'regex', re, groupCount: re.groupCount(), groupNames: new Set(Object.keys(re.namedGroups())), memo: new Map() } };
}

/** The first match of `re` in `text`, shaped like RegExp's exec result, or null. */
function find(re: RE2JS, groupNames: ReadonlySet<string>, text: string): Captures | null {
  const m = re.matcher(text);
  if (!m.find()) return null;
  const out: Record<number, string | undefined> & { groups: Record<string, string | undefined> } = { groups: {} };
  for (let i = 0; i <= m.groupCount(); i++) out[i] = m.group(i) ?? undefined;
  for (const name of groupNames) out.groups[name] = m.group(name) ?? undefined;
  return out;
}

/** null: no match; otherwise the regex match (for capture groups) or `true`. */
export function testMatch(m: Matcher, sourceref: string): Captures | true | null {
  switch (m.kind) {
    case 'exact':
      return sourceref === m.value ? true : null;
    case 'any':
      return true;
    case 'glob':
      return m.glob.test(sourceref) ? true : null;
    case 'regex': {
      // Branch names repeat from push to push, and an answer never changes: remember it (as for globs).
      let hit = m.memo.get(sourceref);
      if (hit === undefined) {
        hit = find(m.re, m.groupNames, sourceref);
        if (m.memo.size >= GLOB_MEMO_LIMIT) m.memo.clear();
        m.memo.set(sourceref, hit);
      }
      return hit;
    }
  }
}

const GLOB_MEMO_LIMIT = 4096;

/**
 * A compiled minimatch pattern that remembers its answers: branch names and changed paths repeat
 * from push to push, and a test costs more than a lookup. The answer for a name never changes, so
 * the memo (bounded; cleared when full) cannot change a result.
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

/** Globs longer than this, or whose braces expand to more patterns, are refused: compiling them is what costs. */
const MAX_GLOB_LENGTH = 512;
const MAX_BRACE_EXPANSIONS = 256;

/**
 * Why a glob is too big to compile safely, or null. minimatch expands `{a,b}` and `{1..9}` into one
 * pattern each before it compiles, so `{a,b}` fourteen times over is 16,384 patterns (a quarter of a
 * second); the product of each brace group's alternatives bounds that count from above.
 */
export function globBounds(glob: string): string | null {
  if (glob.length > MAX_GLOB_LENGTH) return `glob is longer than ${MAX_GLOB_LENGTH} characters`;
  let product = 1;
  const open: number[] = [];
  for (let i = 0; i < glob.length; i++) {
    const ch = glob[i];
    if (ch === '\\') i++;
    else if (ch === '{') open.push(1);
    else if (ch === ',' && open.length > 0) open[open.length - 1]!++;
    else if (ch === '}' && open.length > 0) {
      const start = glob.lastIndexOf('{', i);
      const range = /^\{(-?\d+|[A-Za-z])\.\.(-?\d+|[A-Za-z])(?:\.\.-?\d+)?\}$/.exec(glob.slice(start, i + 1));
      const alternatives = range ? Math.abs(code(range[2]!) - code(range[1]!)) + 1 : open[open.length - 1]!;
      open.pop();
      product *= alternatives;
      if (product > MAX_BRACE_EXPANSIONS) return `glob braces expand to more than ${MAX_BRACE_EXPANSIONS} patterns`;
    }
  }
  return null;
}

const code = (end: string) => (/^-?\d+$/.test(end) ? Number(end) : end.charCodeAt(0));

/** minimatch takes nearly any text as a pattern; a bare `!` or one that expands to nothing is refused. */
export function globCompiled(mm: Minimatch, pattern: string): boolean {
  return pattern.replace(/^!+/, '') !== '' && mm.set.length > 0;
}
