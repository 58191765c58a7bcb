/**
 * Access: what a token may act on, as its role × the repositories it names. A repository glob is
 * `owner/name` where `*` stands for any run of characters within that part (`acme/*`, `acme/svc-*`),
 * or `*` alone for every repository. Admins act on everything.
 */

const PART = /^[A-Za-z0-9._*-]{1,100}$/;

/** Why `glob` is not a repository glob, or null. */
export function repoGlobProblem(glob: string): string | null {
  if (glob === '*') return null;
  const parts = glob.split('/');
  if (parts.length !== 2 || !parts.every((p) => PART.test(p))) {
    return `${JSON.stringify(glob)} is not a repository glob: owner/name, where * stands for any characters in a part (acme/*), or * for all`;
  }
  return null;
}

/** Whether `repo` (owner/name) is one of `globs`; GitHub names compare case-insensitively. */
export function repoAllowed(globs: readonly string[], repo: string): boolean {
  const name = repo.toLowerCase();
  return globs.some((g) => g === '*' || partsMatch(g.toLowerCase().split('/'), name.split('/')));
}

function partsMatch(glob: string[], repo: string[]): boolean {
  return glob.length === 2 && repo.length === 2 && glob.every((g, i) => partMatches(g, repo[i]!));
}

/** `*` within one part, linear: the literal pieces must appear in order, the first at the start and the last at the end. */
function partMatches(glob: string, text: string): boolean {
  const pieces = glob.split('*');
  if (pieces.length === 1) return glob === text;
  const first = pieces[0]!;
  const last = pieces[pieces.length - 1]!;
  if (!text.startsWith(first) || !text.endsWith(last) || text.length < first.length + last.length) return false;
  let at = first.length;
  for (const piece of pieces.slice(1, -1)) {
    const found = text.indexOf(piece, at);
    if (found === -1 || found + piece.length > text.length - last.length) return false;
    at = found + piece.length;
  }
  return true;
}
