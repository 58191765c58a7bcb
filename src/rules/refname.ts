/**
 * git check-ref-format rules for a full ref name (`refs/heads/main`), as the webhook intake
 * needs them to reject a push with `ignored: "invalid ref"`.
 */
export function isValidGitRefName(ref: string): boolean {
  if (typeof ref !== 'string' || ref.length === 0 || ref === '@') return false;
  if (!ref.includes('/')) return false; // a full ref has at least two components
  if (ref.startsWith('/') || ref.endsWith('/') || ref.endsWith('.')) return false;
  if (ref.includes('//') || ref.includes('..') || ref.includes('@{')) return false;
  // control characters, DEL, space, ~ ^ : ? * [ and backslash are never allowed
  if (/[\x00-\x20\x7f~^:?*[\\]/.test(ref)) return false;
  for (const part of ref.split('/')) {
    if (part.startsWith('.') || part.endsWith('.lock')) return false;
  }
  return true;
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
