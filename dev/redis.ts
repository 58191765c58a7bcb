import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A real redis-server for one test suite: a free loopback port, a temp dir, no RDB snapshots,
 * AOF on (fsync as asked), `maxmemory-policy noeviction` unless told otherwise.
 * `kill9()` SIGKILLs it (a crash); `restart()` starts it again on the same port and dir,
 * so it reloads its AOF; `stop()` ends it and removes the dir.
 */
export interface TestRedis {
  url: string;
  port: number;
  dir: string;
  stop(): Promise<void>;
  kill9(): Promise<void>;
  restart(): Promise<void>;
}

export interface TestRedisOptions {
  appendfsync?: 'always' | 'everysec' | 'no';
  /** Default noeviction; other values exist to test the start-up refusal. */
  maxmemoryPolicy?: string;
  /** Default true. */
  appendonly?: boolean;
  /** AUTH password (`--requirepass`); default none. */
  password?: string;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ port, host: '127.0.0.1' });
    let buf = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    // While loading its AOF Redis answers -LOADING; only +PONG means ready.
    sock.on('data', (d) => {
      buf += d.toString();
      // A Redis with a password answers -NOAUTH: up, and waiting for AUTH.
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG') || buf.startsWith('-NOAUTH'));
    });
  });
}

export async function startRedis(opts: TestRedisOptions = {}): Promise<TestRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-redis-'));
  const port = await freePort();
  let proc: ChildProcess | undefined;
  let stderr = '';

  const launch = async () => {
    const args = [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--dir', dir,
      '--save', '',
      '--appendonly', opts.appendonly === false ? 'no' : 'yes',
      '--appendfsync', opts.appendfsync ?? 'everysec',
      '--maxmemory-policy', opts.maxmemoryPolicy ?? 'noeviction',
      '--daemonize', 'no',
      '--logfile', '',
      '--loglevel', 'warning',
      ...(opts.password ? ['--requirepass', opts.password] : []),
    ];
    const child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (d) => (stderr += d.toString()));
    proc = child;
    for (let i = 0; i < 200; i++) {
      if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}): ${stderr}`);
      if (await ping(port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server on ${port} did not become ready: ${stderr}`);
  };

  const end = async (signal: NodeJS.Signals) => {
    const child = proc;
    proc = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  };

  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    kill9: () => end('SIGKILL'),
    restart: async () => {
      await end('SIGTERM');
      await launch();
    },
    stop: async () => {
      await end('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
