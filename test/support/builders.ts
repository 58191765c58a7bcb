import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { dirTag, savedRules } from '../../src/builders/egress.js';
import type { BuildRecord } from '../../src/store/index.js';
import { newBuild } from './lanes.js';
import { freePort } from './redis.js';

/** Helpers of the builders suites: sample git repositories, a git http server, a registry, leftovers checks. */

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

/** A second registry that wants a username and password (htpasswd, bcrypt), on a free port. */
export async function authRegistry(user: string, password: string): Promise<{ host: string; stop(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'slipway-registry-'));
  const port = await freePort();
  const hash = execFileSync('python3', ['-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))', password], {
    encoding: 'utf8',
  }).trim();
  await writeFile(path.join(dir, 'htpasswd'), `${user}:${hash}\n`);
  await writeFile(
    path.join(dir, 'config.yml'),
    [
      'version: 0.1',
      'log: { level: error }',
      `storage: { filesystem: { rootdirectory: ${dir}/data }, delete: { enabled: true } }`,
      `http: { addr: 127.0.0.1:${port} }`,
      `auth: { htpasswd: { realm: slipway-test, path: ${dir}/htpasswd } }`,
    ].join('\n'),
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', path.join(dir, 'config.yml')], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/v2/`).then((r) => r.status === 401, () => false);
    if (ok) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host: `127.0.0.1:${port}`,
    stop: async () => {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

let counter = 0;
/** A build record as the lanes hand it to a runner: a queued one (test/support/lanes.ts), started by hand. */
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

/** Collects a build's log in memory, for suites that test the runner alone. */
export function memoryLog(): { line(t: string): void; step(n: string): void; lines: string[]; text(): string } {
  const lines: string[] = [];
  return {
    lines,
    line: (t) => lines.push(t),
    step: (n) => lines.push(`==> ${n}`),
    text: () => lines.join('\n'),
  };
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

/** The image config's labels, read from the registry (manifest → config blob). */
export async function registryLabels(image: string, reference: string): Promise<Record<string, string>> {
  const [host, ...rest] = image.split('/');
  const name = rest.join('/');
  const manifest = (await (
    await fetch(`http://${host}/v2/${name}/manifests/${reference}`, {
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' },
    })
  ).json()) as { config: { digest: string } };
  const config = (await (await fetch(`http://${host}/v2/${name}/blobs/${manifest.config.digest}`)).json()) as {
    config: { Labels?: Record<string, string> };
  };
  return config.config.Labels ?? {};
}

/** Deletes every manifest of a test image repository (registry delete is enabled). */
export async function deleteRegistryRepo(image: string): Promise<void> {
  for (const tag of await registryTags(image)) {
    const digest = await registryDigest(image, tag);
    const [host, ...rest] = image.split('/');
    if (digest) await fetch(`http://${host}/v2/${rest.join('/')}/manifests/${digest}`, { method: 'DELETE' });
  }
}

/** What a build may leave behind: anything found here after a build ended is a leak. */
export async function leftovers(dataDir: string): Promise<string[]> {
  const found: string[] = [];
  const root = path.join(dataDir, 'builders');
  for (const sub of ['runs', 'x']) {
    for (const e of await readdir(path.join(root, sub)).catch(() => [] as string[])) found.push(`dir ${sub}/${e}`);
  }
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(root)) found.push(`process ${pid}: ${cmd.split('\0').slice(0, 2).join(' ')}`);
  }
  const links = execFileSync('ip', ['-o', 'link', 'show', 'type', 'bridge'], { encoding: 'utf8' });
  for (const line of links.split('\n')) if (line.includes(`slipway:${root}`)) found.push(`bridge ${line.split(':')[1]?.trim()}`);
  const mounts = await readFile('/proc/self/mountinfo', 'utf8');
  for (const line of mounts.split('\n')) if (line.includes(root)) found.push(`mount ${line.split(' ')[4]}`);
  const ours = `${dirTag(path.join(root, 'x'))}.`;
  for (const rule of await savedRules()) if (rule.slot.startsWith(ours)) found.push(`iptables ${rule.args.join(' ')}`);
  for (const c of await readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
    for (const e of await readdir(path.join('/sys/fs/cgroup', c)).catch(() => [] as string[])) {
      if (e.startsWith('slipway-build-')) found.push(`cgroup ${c}/${e}`);
    }
  }
  return found;
}
