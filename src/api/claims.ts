import type { FieldProblem } from './errors.js';
import type { RepoConfig } from '../rules/index.js';
import type { Claim } from '../store/index.js';

/** A claim with where in the config it is made. */
export interface PlacedClaim extends Claim {
  path: string;
  /** What is claimed, in words: `service web`, `host port 8080/tcp`. */
  what: string;
}

/**
 * What a repository's config claims that no other repository may hold: its environments' Swarm
 * service names and host ports (the store refuses a config whose claims another holds).
 */
export function claimsOf(config: RepoConfig): PlacedClaim[] {
  const out: PlacedClaim[] = [];
  for (const [name, env] of Object.entries(config.environments ?? {})) {
    const holder = `${config.repository} (environment ${name})`;
    out.push({ field: `service:${env.service}`, holder, path: `environments.${name}.service`, what: `service ${env.service}` });
    env.ports.forEach((p, i) => {
      out.push({ field: `port:${portKey(p)}`, holder, path: `environments.${name}.ports[${i}]`, what: `host port ${portKey(p)}` });
    });
    for (const [svcName, svc] of Object.entries(env.services ?? {})) {
      const path = `environments.${name}.services.${svcName}`;
      const service = `${env.service}-${svcName}`;
      out.push({ field: `service:${service}`, holder, path, what: `service ${service}` });
      svc.ports.forEach((p, i) => {
        out.push({ field: `port:${portKey(p)}`, holder, path: `${path}.ports[${i}]`, what: `host port ${portKey(p)}` });
      });
    }
  }
  return out;
}

/** One problem per claim of `claims` that `taken` says another repository holds. */
export function claimProblems(claims: readonly PlacedClaim[], taken: readonly { field: string; holder: string }[]): FieldProblem[] {
  const holders = new Map(taken.map((t) => [t.field, t.holder]));
  return claims.filter((c) => holders.has(c.field)).map((c) => ({ path: c.path, message: `${c.what} belongs to ${holders.get(c.field)}` }));
}

/** `18080/tcp` from `"18080:8080"` or `"5353:53/udp"`. */
function portKey(port: string): string {
  const [mapping, protocol] = port.split('/');
  return `${mapping!.split(':')[0]}/${protocol ?? 'tcp'}`;
}

/** The image prefix the operator maps a repository to: `<registry>/<owner>/<name>`, lowercased as Docker names are. */
export function imagePrefix(registry: string, repo: string): string {
  return `${registry}/${repo}`.toLowerCase();
}

/** Whether `image` lies under the repository's prefix (the prefix itself or a path below it). */
export function underPrefix(image: string, prefix: string): boolean {
  return image === prefix || image.startsWith(`${prefix}/`);
}
