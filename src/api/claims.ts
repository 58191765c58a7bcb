import type { FieldProblem } from './errors.js';
import type { RepoConfig } from '../rules/index.js';

/**
 * What a repository's config claims that no other repository may hold: its environments' Swarm
 * service names and host ports. Answers one problem per claim another repository already holds.
 */
export function heldElsewhere(config: RepoConfig, others: readonly { repo: string; config: RepoConfig }[]): FieldProblem[] {
  const services = new Map<string, string>();
  const ports = new Map<string, string>();
  for (const other of others) {
    if (other.repo.toLowerCase() === config.repository.toLowerCase()) continue;
    for (const [name, env] of Object.entries(other.config.environments ?? {})) {
      services.set(env.service, `${other.repo} (environment ${name})`);
      for (const p of env.ports) ports.set(portKey(p), `${other.repo} (environment ${name})`);
    }
  }
  const out: FieldProblem[] = [];
  for (const [name, env] of Object.entries(config.environments)) {
    const holder = services.get(env.service);
    if (holder) out.push({ path: `environments.${name}.service`, message: `service ${env.service} belongs to ${holder}` });
    env.ports.forEach((p, i) => {
      const held = ports.get(portKey(p));
      if (held) out.push({ path: `environments.${name}.ports[${i}]`, message: `host port ${portKey(p)} belongs to ${held}` });
    });
  }
  return out;
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
