import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dirTag, savedRules } from '../../src/builders/egress.js';
import { freePort } from '../../dev/redis.js';

/** Helpers of the builders suites only: a registry that wants a password, an in-memory log, label reads, leftovers checks. */

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
