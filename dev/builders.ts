import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { BuildRecord } from '../src/store/index.js';
import { freePort } from './redis.js';

/** Shared by tests, benches and the demo: sample git repositories, a git http server, the local registry, build records. */

export const BASE = '127.0.0.1:5000/slipway/busybox:latest';
export const REGISTRY = '127.0.0.1:5000';

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com' },
  }).trim();
}

/** A git repository with the given files committed; answers its dir and the commit sha. */
export async function makeRepo(files: Record<string, string>, dir?: string): Promise<{ dir: string; sha: string }> {
  const repo = dir ?? (await mkdtemp(path.join(tmpdir(), 'slipway-src-')));
  if (!dir) git(repo, 'init', '-q', '-b', 'main');
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(repo, name)), { recursive: true });
    await writeFile(path.join(repo, name), content);
  }
  git(repo, 'add', '-A');
  git(repo, 'commit', '-q', '-m', `commit ${randomBytes(3).toString('hex')}`);
  return { dir: repo, sha: git(repo, 'rev-parse', 'HEAD') };
}

/** Serves every repository under `root` over http with git's own http-backend (smart protocol). */
export async function gitHttpServer(root: string): Promise<{ url: string; close(): Promise<void> }> {
  const port = await freePort();
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const child = spawn('git', ['http-backend'], {
      env: {
        ...process.env,
        GIT_PROJECT_ROOT: root,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
        HTTP_CONTENT_ENCODING: String(req.headers['content-encoding'] ?? ''),
        REMOTE_ADDR: '127.0.0.1',
      },
    });
    req.pipe(child.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) return void res.write(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      headersDone = true;
      for (const line of head.subarray(0, end).toString().split('\r\n')) {
        const i = line.indexOf(':');
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (name.toLowerCase() === 'status') res.statusCode = Number(value.split(' ')[0]);
        else res.setHeader(name, value);
      }
      res.write(head.subarray(end + 4));
    });
    child.on('close', () => res.end());
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}


let counter = 0;
/** A build record as the lanes hand it to a runner: a queued one (`newBuild`), started by hand. */
export function buildRecord(over: Partial<BuildRecord> & Pick<BuildRecord, 'repo' | 'sha' | 'image' | 'tags'>): BuildRecord {
  const now = new Date().toISOString();
  return newBuild(over.repo, {
    // Unique across processes too: the id names this build's engine, bridge and workspace.
    id: `b${Date.now().toString(36)}${(counter++).toString(36)}${randomBytes(2).toString('hex')}`,
    rules: ['default'],
    status: 'running',
    startedAt: now,
    trigger: 'manual',
    by: 'test',
    ...over,
  });
}


/** The registry's digest for a tag (Docker-Content-Digest of the manifest). */
export async function registryDigest(image: string, tag: string): Promise<string | null> {
  const [host, ...rest] = image.split('/');
  const res = await fetch(`http://${host}/v2/${rest.join('/')}/manifests/${tag}`, {
    method: 'HEAD',
    headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' },
  });
  return res.ok ? res.headers.get('docker-content-digest') : null;
}

export async function registryTags(image: string): Promise<string[]> {
  const [host, ...rest] = image.split('/');
  const res = await fetch(`http://${host}/v2/${rest.join('/')}/tags/list`);
  if (!res.ok) return [];
  return (((await res.json()) as { tags: string[] | null }).tags ?? []).sort();
}


/** Deletes every manifest of a test image repository (registry delete is enabled). */
export async function deleteRegistryRepo(image: string): Promise<void> {
  for (const tag of await registryTags(image)) {
    const digest = await registryDigest(image, tag);
    const [host, ...rest] = image.split('/');
    if (digest) await fetch(`http://${host}/v2/${rest.join('/')}/manifests/${digest}`, { method: 'DELETE' });
  }
}

let queuedCounter = 0;
/** A new queued build record. */
export function newBuild(repo: string, over: Partial<BuildRecord> = {}): BuildRecord {
  queuedCounter += 1;
  return {
    id: `b${Date.now().toString(36)}${queuedCounter.toString().padStart(4, '0')}`,
    repo,
    ref: 'refs/heads/main',
    sha: 'a'.repeat(40),
    rules: ['edge'],
    tags: ['edge'],
    image: `127.0.0.1:5000/${repo}`,
    status: 'queued',
    digest: null,
    error: null,
    queuedAt: new Date().toISOString(),
    startedAt: null,
    finishedAt: null,
    deployments: [],
    context: '.',
    dockerfile: 'Dockerfile',
    build_args: {},
    cache: false,
    deploy: [],
    cloneUrl: null,
    deliveryId: null,
    trigger: 'webhook',
    by: 'github:octocat',
    supersededBy: null,
    warnings: [],
    ...over,
  };
}
