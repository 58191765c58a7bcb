/** Removes credentials from text that may reach a log or a record: URL userinfo and known secrets. */
export function scrub(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, '$1***@');
  for (const secret of secrets) {
    if (secret && secret.length >= 4) out = out.split(secret).join('***');
  }
  return out;
}
