/** Docker's tag grammar and the sanitising steps of spec/rules.md. */

export const DOCKER_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const VALID_CHARS = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/; // DOCKER_TAG without the length, which is cheaper to test apart

/**
 * Makes a rendered tag valid for Docker: runs of characters outside `[A-Za-z0-9_.-]` become
 * one `-`, then leading `.` and `-` go, then it is cut to 128 characters. May return ''.
 */
export function sanitizeTag(raw: string): string {
  if (raw.length <= 128 && VALID_CHARS.test(raw)) return raw; // the common case: already valid
  return raw.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[.-]+/, '').slice(0, 128);
}

export function isValidDockerTag(tag: string): boolean {
  return tag.length <= 128 && VALID_CHARS.test(tag);
}
