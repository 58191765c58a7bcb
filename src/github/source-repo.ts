/**
 * Which GitHub repository hears about a build: the one its source was fetched from. A build of
 * acme/app whose `source.url` is another repository's reports to that repository; a build fetched
 * from anywhere else (file://, a loopback git server, another host) reports nowhere, since no
 * GitHub repository holds the commit it built.
 */

export interface GitHubRepository {
  owner: string;
  repo: string;
}

export type ReportTarget = { to: GitHubRepository } | { skip: string };

/** `https://<host>/<owner>/<name>[.git]`: GitHub's owner and repository names, and nothing after them. */
const REPOSITORY_PATH = /^\/([A-Za-z0-9-]+)\/([A-Za-z0-9._-]+?)(?:\.git)?$/;

/**
 * The web host whose repositories a REST API serves: github.com for api.github.com, else the API's own
 * host (GitHub Enterprise Server serves its API at `https://HOST/api/v3`).
 */
export function githubHostOf(apiUrl: string): string {
  const host = new URL(apiUrl).host.toLowerCase();
  return host === 'api.github.com' ? 'github.com' : host;
}

/** Where the build whose source came from `cloneUrl` is reported on `host`, or why nowhere. */
export function reportTarget(cloneUrl: string | null, host: string): ReportTarget {
  // GitHub's pushes always carry a clone URL: a build without one fetched nothing (the builder refuses it).
  if (cloneUrl === null) return { skip: 'the build has no source URL' };
  const elsewhere = { skip: `source ${redact(cloneUrl)} is not on ${host}` };
  let url: URL;
  try {
    url = new URL(cloneUrl);
  } catch {
    return elsewhere;
  }
  const path = REPOSITORY_PATH.exec(url.pathname);
  if (url.protocol !== 'https:' || url.host.toLowerCase() !== host.toLowerCase() || !path || url.search || url.hash) return elsewhere;
  return { to: { owner: path[1]!, repo: path[2]! } };
}

/** Credentials in a clone URL never reach a log. */
function redact(url: string): string {
  return url.replace(/\/\/[^/@]*@/, '//***@');
}
