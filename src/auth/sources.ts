/**
 * Where slipway may fetch source from (`SLIPWAY_SOURCE_ALLOW`), so a signed push or a stored config
 * cannot point a build at this machine's files, its loopback services or another team's server.
 * Entries, comma-separated:
 * - a host (`github.com`, `ghe.acme.com`): `https://<host>/<owner>/<name>[.git]`, and only the
 *   repository's own path, so a push of acme/web never builds rival/app's code;
 * - a URL prefix with its scheme (`https://git.acme.com/`, `http://127.0.0.1:`, `file:///srv/git/`):
 *   any URL that starts with it (for mirrors and local servers the operator trusts).
 * The default is `github.com`.
 */
export interface SourcePolicy {
  hosts: string[];
  prefixes: string[];
}

export class SourcePolicyError extends Error {
  override readonly name = 'SourcePolicyError';
  readonly path = 'SLIPWAY_SOURCE_ALLOW';
}

const HOST = /^[A-Za-z0-9.-]+(:\d{1,5})?$/;
const PREFIX = /^(https?|ssh|git|file):\/\/\S*$/;

export function parseSourceAllow(raw: string | undefined): SourcePolicy {
  const entries = (raw ?? 'github.com').split(',').map((e) => e.trim()).filter(Boolean);
  const policy: SourcePolicy = { hosts: [], prefixes: [] };
  for (const entry of entries) {
    if (HOST.test(entry)) policy.hosts.push(entry.toLowerCase());
    else if (PREFIX.test(entry)) policy.prefixes.push(entry);
    else throw new SourcePolicyError(`"${entry}" is neither a host (github.com) nor a URL prefix with its scheme (https://git.acme.com/, file:///srv/git/)`);
  }
  if (policy.hosts.length + policy.prefixes.length === 0) throw new SourcePolicyError('is empty: name at least one host or URL prefix');
  return policy;
}

/** Why `url` may not be fetched for `repo` (owner/name), or null when it may. */
export function sourceProblem(policy: SourcePolicy, url: string, repo: string): string | null {
  if (policy.prefixes.some((p) => url.startsWith(p))) return null;
  let parsed: URL | null = null;
  try {
    parsed = new URL(url);
  } catch {
    // scp-like `git@host:path` and bare paths are allowed only through a prefix
  }
  if (parsed && parsed.protocol === 'https:' && !parsed.username && !parsed.password && policy.hosts.includes(parsed.host.toLowerCase())) {
    const own = parsed.pathname.replace(/\.git$/, '').toLowerCase() === `/${repo.toLowerCase()}`;
    if (own && !parsed.search && !parsed.hash) return null;
    return `${redact(url)} is not ${repo}'s own repository on ${parsed.host} (https://${parsed.host}/${repo}.git)`;
  }
  const allowed = [...policy.hosts.map((h) => `https://${h}/<owner>/<name>`), ...policy.prefixes].join(', ');
  return `${redact(url)} is not an allowed source (SLIPWAY_SOURCE_ALLOW: ${allowed})`;
}

function redact(url: string): string {
  return url.replace(/\/\/[^/@]*@/, '//***@');
}
