import type Docker from 'dockerode';
import { BuildError, oneLine } from './errors.js';
import { BuildProgress, readJsonLines, type ProgressSink } from './progress.js';
import type { RegistryCredentials } from './registry.js';

export interface EngineBuildOptions {
  /** Local reference the image gets (`repo:tag`). */
  ref: string;
  dockerfile: string;
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  cache: boolean;
  /** The Dockerfile stage to build; undefined: the last. */
  target?: string | undefined;
  memoryBytes?: number;
  cpus?: number;
  signal: AbortSignal;
}

/** Builds a tar context with BuildKit through the Engine API; answers the image id. */
export async function buildOnEngine(docker: Docker, tar: NodeJS.ReadableStream, opts: EngineBuildOptions, sink: ProgressSink): Promise<string> {
  const progress = new BuildProgress(sink);
  const stream = await docker.buildImage(tar, {
    version: '2',
    t: opts.ref,
    dockerfile: opts.dockerfile,
    buildargs: opts.buildArgs,
    labels: opts.labels,
    nocache: !opts.cache,
    ...(opts.target ? { target: opts.target } : {}),
    // BuildKit on a shared engine ignores these; dedicated engines enforce limits through their cgroup.
    ...(opts.memoryBytes ? { memory: opts.memoryBytes } : {}),
    ...(opts.cpus ? { cpuperiod: 100_000, cpuquota: Math.round(opts.cpus * 100_000) } : {}),
    abortSignal: opts.signal,
  });
  await readJsonLines(stream, (msg) => progress.feed(msg));
  if (progress.error || progress.failedStep) {
    throw new BuildError('build_failed', progress.failedStep ? `step ${progress.failedStep}` : `build failed: ${progress.error}`);
  }
  if (!progress.imageId) throw new BuildError('build_failed', 'the engine ended the build without an image');
  return progress.imageId;
}

const AUTH_REFUSED = /unauthorized|authentication required|denied|no basic auth credentials|401|403/i;

/** Pushes `repo:tag` through the engine; answers the manifest digest from the push's aux output. */
export async function pushFromEngine(
  docker: Docker,
  repo: string,
  tag: string,
  credentials: RegistryCredentials | undefined,
  registry: string,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<string> {
  // The Engine API wants X-Registry-Auth even for an anonymous registry: `{}` then.
  const authconfig = credentials ? { username: credentials.username, password: credentials.password, serveraddress: registry } : {};
  const image = docker.getImage(repo);
  const stream = (await image.push({ tag, authconfig, abortSignal: signal } as Parameters<typeof image.push>[0])) as NodeJS.ReadableStream;
  let digest: string | undefined;
  let error: string | undefined;
  const seen = new Set<string>();
  await readJsonLines(stream, (msg) => {
    const aux = msg.aux as { Digest?: string } | undefined;
    if (aux?.Digest) digest = aux.Digest;
    const detail = msg.errorDetail as { message?: string } | undefined;
    if (detail || typeof msg.error === 'string') error = detail?.message ?? String(msg.error);
    const status = typeof msg.status === 'string' ? msg.status : undefined;
    // One line per layer state, not every progress tick.
    if (status) {
      const line = msg.id ? `${String(msg.id)}: ${status}` : status;
      if (!seen.has(line) && !/^(Pushing|Preparing|Waiting)$/.test(status)) {
        seen.add(line);
        log(line);
      }
    }
  });
  if (error) {
    const auth = AUTH_REFUSED.test(error);
    throw new BuildError(auth ? 'registry_auth' : 'push_failed', `registry ${registry} refused the push of ${repo}:${tag}: ${oneLine(error, 300)}`, !auth);
  }
  if (!digest) throw new BuildError('push_failed', `push of ${repo}:${tag} reported no digest`, true);
  return digest;
}
