import type Docker from 'dockerode';

const KIND = 'io.slipway.kind';
const REPO = 'io.slipway.repo';

/**
 * Removes the Swarm objects slipway deployed for one repository (services, their entry proxies,
 * configs and networks), proving ownership by label first: `io.slipway.kind=deploy` and
 * `io.slipway.repo=<repo>`, then the images its tasks pulled (`image`, the config's image).
 * The demo calls it before it starts (a previous run's leftovers) and when it ends, so it leaves
 * nothing behind.
 */
export async function removeDeployments(docker: Docker, repo: string, image: string): Promise<number> {
  const filters = { label: [`${KIND}=deploy`, `${REPO}=${repo}`] };
  const services = await docker.listServices({ filters });
  for (const s of services) {
    if (s.Spec?.Labels?.[KIND] !== 'deploy' || s.Spec?.Labels?.[REPO] !== repo) continue;
    await docker.getService(s.ID).remove().catch(ignoreMissing);
  }
  const configs = (await docker.listConfigs({ filters })) as { ID: string; Spec?: { Labels?: Record<string, string> } }[];
  // Configs and networks stay in use until the services' tasks have stopped; retry for a while.
  for (let i = 0; i < 60; i++) {
    const left: unknown[] = [];
    for (const c of configs) {
      if (c.Spec?.Labels?.[REPO] !== repo) continue;
      await docker.getConfig(c.ID).remove().catch((err) => (isMissing(err) ? undefined : left.push(c)));
    }
    const networks = await docker.listNetworks({ filters });
    for (const n of networks) {
      if (n.Labels?.[KIND] !== 'deploy' || n.Labels?.[REPO] !== repo) continue;
      await docker.getNetwork(n.Id).remove().catch((err) => (isMissing(err) ? undefined : left.push(n)));
    }
    if (!left.length) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  await removePulledImages(docker, image);
  return services.length;
}

/**
 * Images pulled by digest for the stopped tasks: only ones slipway built (their `io.slipway.build`
 * label) under this image name, and never forced, so an image something still uses stays.
 */
async function removePulledImages(docker: Docker, image: string): Promise<void> {
  const images = await docker.listImages({ filters: { label: ['io.slipway.build'] } });
  let pending = images.filter((i) => (i.RepoDigests ?? []).some((d) => d.startsWith(`${image}@`))).map((i) => i.Id);
  // Swarm removes the stopped tasks' containers a moment after the service: an image they still hold (409) is retried.
  for (let i = 0; i < 40 && pending.length; i++) {
    const inUse: string[] = [];
    for (const id of pending) {
      await docker
        .getImage(id)
        .remove()
        .catch((err: { statusCode?: number }) => (err.statusCode === 409 ? inUse.push(id) : undefined));
    }
    pending = inUse;
    if (pending.length) await new Promise((r) => setTimeout(r, 500));
  }
}

function isMissing(err: unknown): boolean {
  return (err as { statusCode?: number }).statusCode === 404;
}

function ignoreMissing(err: unknown): void {
  if (!isMissing(err)) throw err;
}
