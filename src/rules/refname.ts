// control characters, DEL, space, ~ ^ : ? * [ \ anywhere; `..`, `//`, `@{`; a component starting
// with `.` or ending with `.lock`.
const FORBIDDEN = /[\x00-\x20\x7f~^:?*[\\]|\.\.|\/\/|@\{|(?:^|\/)\.|\.lock(?:\/|$)/;

/**
 * git check-ref-format rules for a full ref name (`refs/heads/main`), as the webhook intake
 * needs them to reject a push with `ignored: "invalid ref"`.
 */
export function isValidGitRefName(ref: string): boolean {
  if (typeof ref !== 'string' || ref === '@') return false;
  // a full ref has at least two components, and does not start or end with `/` nor end with `.`
  if (!ref.includes('/') || ref.startsWith('/') || ref.endsWith('/') || ref.endsWith('.')) return false;
  return !FORBIDDEN.test(ref);
}

/** A branch name is valid when `refs/heads/<name>` is. */
export function isValidBranchName(name: string): boolean {
  return !name.startsWith('-') && isValidGitRefName(`refs/heads/${name}`);
}

export type ParsedRef = { source: 'branch' | 'tag'; sourceref: string } | { source: null; sourceref: string };

/** `refs/heads/X` is a branch event, `refs/tags/X` a tag event; anything else is neither. */
export function parseRef(ref: string): ParsedRef {
  if (ref.startsWith('refs/heads/') && ref.length > 11) return { source: 'branch', sourceref: ref.slice(11) };
  if (ref.startsWith('refs/tags/') && ref.length > 10) return { source: 'tag', sourceref: ref.slice(10) };
  return { source: null, sourceref: ref };
}
