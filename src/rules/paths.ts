import { Minimatch } from 'minimatch';
import { Glob, globBounds, globCompiled } from './match.js';

/** A compiled `paths` change filter. */
export interface PathFilter {
  positive: Glob[];
  negative: Glob[];
  /** Only negative globs: as if `**` came first. */
  anyPositive: boolean;
}

export type GlobParse = { ok: true; mm: Minimatch } | { ok: false; message: string };

/** One `paths` entry: minimatch with `{dot: true}` against the whole path; `!…` negates. */
export function compilePathGlob(glob: string): GlobParse {
  const bounded = globBounds(glob);
  if (bounded) return { ok: false, message: bounded };
  // flipNegate: a `!…` glob answers whether its pattern hits; the filter applies the negation.
  const mm = new Minimatch(glob, { dot: true, nocomment: true, flipNegate: true });
  if (!globCompiled(mm, glob)) return { ok: false, message: `invalid glob ${JSON.stringify(glob)}` };
  return { ok: true, mm };
}

export function compilePathFilter(globs: readonly string[]): PathFilter {
  const positive: Glob[] = [];
  const negative: Glob[] = [];
  for (const g of globs) {
    const c = compilePathGlob(g);
    if (!c.ok) throw new Error(c.message); // validated before
    (c.mm.negate ? negative : positive).push(new Glob(c.mm));
  }
  return { positive, negative, anyPositive: positive.length === 0 };
}

/** Passes when some changed file matches a positive glob and no negative glob matches that same file. */
export function pathsPass(filter: PathFilter, changed: readonly string[]): boolean {
  return changed.some(
    (file) => typeof file === 'string' && (filter.anyPositive || filter.positive.some((g) => g.test(file))) && !filter.negative.some((g) => g.test(file)),
  );
}
