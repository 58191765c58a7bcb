import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const SCRIPT = join(import.meta.dirname, '..', 'infra', 'dev', 'services.sh');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function services(args: string[], env: Record<string, string> = {}): Promise<Result> {
  try {
    const { stdout, stderr } = await run('bash', [SCRIPT, ...args], { env: { ...process.env, ...env }, timeout: 240_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Running, not a zombie: an exited daemon may wait a while for an init that reaps slowly (or never). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !['Z', 'X'].includes(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  } catch {
    return false;
  }
}

function line(output: string, service: string): string {
  return output.split('\n').find((l) => l.startsWith(`${service}:`)) ?? `(no line for ${service})`;
}

async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args]);
  return stdout.trim();
}

describe('infra/dev/services.sh on the shared machine', () => {
  beforeAll(async () => {
    const up = await services(['up']);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
  });

  it('status reports the engine, the swarm, the registry, redis and the base image as up', async () => {
    const status = await services(['status']);
    expect(status.code).toBe(0);
    expect(line(status.stdout, 'docker engine')).toMatch(/^docker engine: up \(/);
    expect(line(status.stdout, 'swarm')).toBe('swarm: up (active)');
    expect(line(status.stdout, 'registry')).toMatch(/^registry: up \(127\.0\.0\.1:5000;/);
    expect(line(status.stdout, 'redis')).toMatch(/^redis: up \(127\.0\.0\.1:6379; appendonly yes, maxmemory-policy noeviction;/);
    expect(line(status.stdout, 'base image')).toBe('base image: up (slipway/busybox:latest)');
    expect(line(status.stdout, 'debian base image')).toBe('debian base image: up (slipway/debian:bookworm)');
    expect(line(status.stdout, 'node base image')).toBe('node base image: up (slipway/node:20)');
  });

  it('a second up starts nothing: every service is already running', async () => {
    const up = await services(['up']);
    expect(up.code).toBe(0);
    expect(up.stdout).not.toMatch(/^started /m);
    expect(up.stdout).toMatch(/^docker engine already running/m);
    expect(up.stdout).toMatch(/^swarm already active$/m);
    expect(up.stdout).toMatch(/^registry already running on 127\.0\.0\.1:5000/m);
    expect(up.stdout).toMatch(/^redis already running on 127\.0\.0\.1:6379/m);
    expect(up.stdout).toMatch(/^base image slipway\/busybox:latest already present$/m);
    expect(up.stdout).toMatch(/^base image slipway\/debian:bookworm already present$/m);
    expect(up.stdout).toMatch(/^base image slipway\/node:20 already present$/m);
    expect(up.stdout).not.toMatch(/mmdebstrap/);
  });

  it('the Debian and Node base images carry this machine\'s CA bundle and the host\'s Node and npm', async () => {
    const { stdout } = await run('docker', [
      'run', '--rm', '--network', 'none', 'slipway/node:20',
      'sh', '-c', 'echo "$SSL_CERT_FILE $NODE_EXTRA_CA_CERTS"; node --version; npm --version; apt-get --version | head -n1; for f in /usr/local/share/ca-certificates/*.crt; do grep -qxF "$(sed -n 2p "$f")" /etc/ssl/certs/ca-certificates.crt && echo bundled; done',
    ]);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toBe('/etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt');
    expect(lines[1]).toBe(process.version);
    expect(lines[2]).toBe((await run('npm', ['--version'])).stdout.trim());
    expect(lines[3]).toMatch(/^apt /);
    expect(lines.slice(4).length).toBeGreaterThan(0);
    expect(new Set(lines.slice(4))).toEqual(new Set(['bundled']));
  });

  it('the base image is the busybox rootfs with the applets tests and examples use', async () => {
    const { stdout } = await run('docker', [
      'run', '--rm', '--network', 'none', 'slipway/busybox:latest',
      'sh', '-c', 'for a in httpd nc wget sleep cat echo ls mkdir cp rm env sed grep date; do test -x /bin/$a && echo /bin/$a; done; echo slipway | sed s/way/WAY/',
    ]);
    const lines = stdout.trim().split('\n');
    expect(lines.at(-1)).toBe('slipWAY');
    expect(lines.slice(0, -1)).toEqual(
      ['httpd', 'nc', 'wget', 'sleep', 'cat', 'echo', 'ls', 'mkdir', 'cp', 'rm', 'env', 'sed', 'grep', 'date'].map((a) => `/bin/${a}`),
    );
  });

  it('rejects an unknown command with usage and exit 2, changing nothing', async () => {
    const result = await services(['restart']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/usage: .*services\.sh up\|down\|status/);
  });
});

describe('infra/dev/services.sh with its own state folder', () => {
  let state: string;
  let env: Record<string, string>;
  let redisPort: number;
  let registryPort: number;
  let enginePid: number;

  beforeAll(async () => {
    state = await mkdtemp(join(tmpdir(), 'slipway-services-'));
    redisPort = await freePort();
    registryPort = await freePort();
    env = { SLIPWAY_DEV_STATE: state, SLIPWAY_DEV_REDIS_PORT: String(redisPort), SLIPWAY_DEV_REGISTRY_PORT: String(registryPort) };
    const { stdout } = await run('docker', ['info', '--format', '{{.ServerVersion}}']);
    expect(stdout.trim()).not.toBe('');
    enginePid = Number((await run('pgrep', ['-xo', 'dockerd'])).stdout.trim());
  });

  afterAll(async () => {
    await services(['down'], env);
    for (const image of ['busybox:latest', 'debian:bookworm', 'node:20']) {
      await run('docker', ['rmi', `127.0.0.1:${registryPort}/slipway/${image}`]).catch(() => undefined);
    }
    await rm(state, { recursive: true, force: true });
  });

  it('up starts a registry and a Redis of its own, configured for slipway, and reuses the running engine', async () => {
    const up = await services(['up'], env);
    expect(up.stderr).toBe('');
    expect(up.code).toBe(0);
    expect(up.stdout).toMatch(/^docker engine already running \(not started by services\.sh\)$/m);
    expect(up.stdout).toMatch(new RegExp(`^started registry on 127\\.0\\.0\\.1:${registryPort} `, 'm'));
    expect(up.stdout).toMatch(new RegExp(`^started redis on 127\\.0\\.0\\.1:${redisPort} `, 'm'));
    expect(up.stdout).toMatch(new RegExp(`^pushed 127\\.0\\.0\\.1:${registryPort}/slipway/busybox:latest$`, 'm'));
    expect(up.stdout).toMatch(new RegExp(`^pushed 127\\.0\\.0\\.1:${registryPort}/slipway/debian:bookworm$`, 'm'));
    expect(up.stdout).toMatch(new RegExp(`^pushed 127\\.0\\.0\\.1:${registryPort}/slipway/node:20$`, 'm'));

    expect(await redisCli(redisPort, 'config', 'get', 'appendonly')).toBe('appendonly\nyes');
    expect(await redisCli(redisPort, 'config', 'get', 'appendfsync')).toBe('appendfsync\neverysec');
    expect(await redisCli(redisPort, 'config', 'get', 'maxmemory-policy')).toBe('maxmemory-policy\nnoeviction');
    expect(await redisCli(redisPort, 'config', 'get', 'dir')).toBe(`dir\n${join(state, 'redis')}`);

    const registryConfig = await readFile(join(state, 'registry.yml'), 'utf8');
    expect(registryConfig).toMatch(/delete:\n\s+enabled: true/);
    const manifest = await fetch(`http://127.0.0.1:${registryPort}/v2/slipway/busybox/manifests/latest`, {
      method: 'HEAD',
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    expect(manifest.status).toBe(200);
    expect(manifest.headers.get('docker-content-digest')).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('status names what this state folder started', async () => {
    const status = await services(['status'], env);
    expect(status.code).toBe(0);
    expect(line(status.stdout, 'registry')).toMatch(new RegExp(`^registry: up \\(127\\.0\\.0\\.1:${registryPort}; started by services\\.sh, pid \\d+\\)$`));
    expect(line(status.stdout, 'redis')).toMatch(new RegExp(`^redis: up \\(127\\.0\\.0\\.1:${redisPort}; .*started by services\\.sh, pid \\d+\\)$`));
    expect(line(status.stdout, 'docker engine')).toMatch(/not started by services\.sh/);
  });

  it('a second up is idempotent: the same processes keep running', async () => {
    const redisPid = Number(await readFile(join(state, 'redis.pid'), 'utf8'));
    const registryPid = Number(await readFile(join(state, 'registry.pid'), 'utf8'));
    const up = await services(['up'], env);
    expect(up.code).toBe(0);
    expect(up.stdout).not.toMatch(/^started /m);
    expect(up.stdout).toMatch(new RegExp(`^registry already running on 127\\.0\\.0\\.1:${registryPort} \\(started by services\\.sh, pid ${registryPid}\\)$`, 'm'));
    expect(up.stdout).toMatch(new RegExp(`^redis already running on 127\\.0\\.0\\.1:${redisPort} \\(started by services\\.sh, pid ${redisPid};`, 'm'));
    expect(up.stdout).toMatch(new RegExp(`^registry already has 127\\.0\\.0\\.1:${registryPort}/slipway/busybox:latest$`, 'm'));
  });

  it('down stops only what it started: its Redis and registry stop, the engine it found keeps running', async () => {
    const redisPid = Number(await readFile(join(state, 'redis.pid'), 'utf8'));
    const registryPid = Number(await readFile(join(state, 'registry.pid'), 'utf8'));
    const down = await services(['down'], env);
    expect(down.code).toBe(0);
    expect(down.stdout).toContain(`stopped redis (pid ${redisPid})`);
    expect(down.stdout).toContain(`stopped registry (pid ${registryPid})`);
    expect(down.stdout).toContain('dockerd: not started by services.sh, left alone');
    expect(alive(redisPid)).toBe(false);
    expect(alive(registryPid)).toBe(false);
    expect(alive(enginePid)).toBe(true);

    const status = await services(['status'], env);
    expect(status.code).toBe(1);
    expect(line(status.stdout, 'redis')).toBe(`redis: down (127.0.0.1:${redisPort})`);
    expect(line(status.stdout, 'registry')).toBe(`registry: down (127.0.0.1:${registryPort})`);
    expect(line(status.stdout, 'docker engine')).toMatch(/^docker engine: up/);

    const again = await services(['down'], env);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('redis: not started by services.sh, left alone');
  });

  it('refuses a registry port held by something that is not a registry, and says why', async () => {
    const squatter = createHttpServer((_req, res) => res.writeHead(404).end());
    await new Promise<void>((resolve) => squatter.listen(registryPort, '127.0.0.1', resolve));
    try {
      const up = await services(['up'], env);
      expect(up.code).toBe(1);
      expect(up.stderr).toContain(`services.sh: FAILED: port ${registryPort} is taken by something that is not a registry`);
    } finally {
      squatter.closeAllConnections();
      await new Promise((resolve) => squatter.close(resolve));
    }
  });
});
