import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startRedis } from '../dev/redis.js';
import { ADMIN, api, deliver, pushPayload, SECRET, startIntake, type Intake } from '../dev/webhooks.js';

/** The real `slipway` binary: server processes and client commands. */

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function slipway(args: string[], env: Record<string, string>, o: { until?: RegExp; signalAfterMatch?: NodeJS.Signals } = {}): Promise<Run & { matched: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/slipway.js', ...args], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let matched = false;
    const check = () => {
      if (!matched && o.until && o.until.test(stdout + stderr)) {
        matched = true;
        if (o.signalAfterMatch) child.kill(o.signalAfterMatch);
      }
    };
    child.stdout.on('data', (d) => {
      stdout += d;
      check();
    });
    child.stderr.on('data', (d) => {
      stderr += d;
      check();
    });
    child.on('exit', (code) => resolve({ code, stdout, stderr, matched }));
  });
}

describe('server processes', () => {
  it('`slipway serve` refuses a Redis whose maxmemory-policy is not noeviction, saying how to fix it (exit 1)', async () => {
    const redis = await startRedis({ maxmemoryPolicy: 'allkeys-lru' });
    try {
      const r = await slipway(['serve'], { SLIPWAY_REDIS_URL: redis.url, SLIPWAY_WEBHOOK_SECRET: 's', SLIPWAY_PORT: '0' });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/maxmemory-policy is allkeys-lru/);
      expect(r.stderr).toMatch(/noeviction/);
      expect(r.stderr).toMatch(/CONFIG SET maxmemory-policy noeviction/);
    } finally {
      await redis.stop();
    }
  });

  it('`slipway worker` refuses it too, and an unreachable Redis fails with exit 1 naming it', async () => {
    const redis = await startRedis({ maxmemoryPolicy: 'volatile-lru' });
    try {
      const r = await slipway(['worker'], { SLIPWAY_REDIS_URL: redis.url });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/volatile-lru.*noeviction/s);
    } finally {
      await redis.stop();
    }
    const port = await freePort();
    const down = await slipway(['serve'], { SLIPWAY_REDIS_URL: `redis://127.0.0.1:${port}`, SLIPWAY_WEBHOOK_SECRET: 's' });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}`));
  });

  it('`slipway serve` with an invalid setting exits 2 naming it', async () => {
    const r = await slipway(['serve'], { SLIPWAY_PORT: 'eighty', SLIPWAY_REDIS_URL: 'redis://127.0.0.1:1' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/SLIPWAY_PORT/);
  });

  it('`slipway serve` answers, then exits 0 on SIGTERM', async () => {
    const redis = await startRedis();
    try {
      const port = await freePort();
      const r = await slipway(['serve'], { SLIPWAY_REDIS_URL: redis.url, SLIPWAY_WEBHOOK_SECRET: SECRET, SLIPWAY_PORT: String(port), SLIPWAY_ADMIN_TOKEN: ADMIN }, { until: /listening/, signalAfterMatch: 'SIGTERM' });
      expect(r.matched).toBe(true);
      expect(r.code).toBe(0);
    } finally {
      await redis.stop();
    }
  });

  it('`slipway up` starts a private Redis under SLIPWAY_DATA_DIR, prints URL, secret and an admin token that works', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'slipway-up-'));
    const port = await freePort();
    try {
      const child = spawn(process.execPath, ['bin/slipway.js', 'up'], {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', SLIPWAY_DATA_DIR: dataDir, SLIPWAY_PORT: String(port), SLIPWAY_LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d) => {
          out += d;
          if (/admin token:\s+\S+/.test(out)) resolve();
        });
        child.on('exit', () => reject(new Error(`up exited: ${out}\n${err}`)));
      });
      const url = /slipway is up: (\S+)/.exec(out)![1]!;
      const secret = /webhook secret:\s+(\S+)/.exec(out)![1]!;
      const token = /admin token:\s+(\S+)/.exec(out)![1]!;
      expect(url).toBe(`http://127.0.0.1:${port}`);
      expect((await api(url, 'GET', '/api/me', { token })).body.role).toBe('admin');
      await api(url, 'PUT', '/api/repos/up/app', { token, json: { repository: 'up/app', image: 'localhost:5000/up/app' } });
      const d = await deliver(url, { event: 'push', payload: pushPayload({ repo: 'up/app', ref: 'refs/heads/main', message: 'x [skip ci]' }), secret });
      expect(d.status).toBe(202);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      // Its Redis kept its data (AOF) under the data dir and is stopped with it.
      const { readdir } = await import('node:fs/promises');
      expect(await readdir(join(dataDir, 'redis'))).toEqual(expect.arrayContaining([expect.stringMatching(/appendonly/)]));
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('client commands', () => {
  let intake: Intake;
  let dir: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    intake = await startIntake();
    dir = await mkdtemp(join(tmpdir(), 'slipway-cli-'));
    env = { SLIPWAY_URL: intake.url, SLIPWAY_TOKEN: ADMIN };
  });
  afterAll(async () => {
    await intake?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('`repo set` stores a YAML config (0) and names every problem of an invalid one (2)', async () => {
    await writeFile(join(dir, 'ok.yaml'), 'repository: cli/app\nimage: localhost:5000/cli/app\nrules:\n  - {name: edge, source: branch, match: main, tags: [edge]}\n');
    const ok = await slipway(['repo', 'set', 'cli/app', '--config', join(dir, 'ok.yaml')], env);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/stored the config of cli\/app: 1 rule/);
    expect((await api(intake.url, 'GET', '/api/repos/cli/app')).body.rules[0].name).toBe('edge');

    await writeFile(join(dir, 'bad.json'), JSON.stringify({ repository: 'cli/app', image: 'x:1', rules: [{ name: 'a', source: 'nope', tags: [] }] }));
    const bad = await slipway(['repo', 'set', 'cli/app', '--config', join(dir, 'bad.json')], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/image/);
    expect(bad.stderr).toMatch(/rules\[0\]\.source/);
    expect(bad.stderr).toMatch(/rules\[0\]\.tags/);

    const missing = await slipway(['repo', 'set', 'cli/app', '--config', join(dir, 'nope.yaml')], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/cannot read/);
  });

  it('`build` queues by hand (0); `builds` lists them (0)', async () => {
    const sha = 'f'.repeat(40);
    const b = await slipway(['build', 'cli/app', '--ref', 'main', '--sha', sha], env);
    expect(b.code).toBe(0);
    const id = /: (\S+)\n/.exec(b.stdout)![1]!;
    expect((await api(intake.url, 'GET', `/api/builds/${id}`)).body).toMatchObject({ sha, tags: ['edge'], by: 'admin' });
    const list = await slipway(['builds', '--repo', 'cli/app'], env);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(id);
    expect(list.stdout).toMatch(/queued/);
    const json = await slipway(['builds', '--json'], env);
    expect(JSON.parse(json.stdout)[0].id).toBe(id);
  });

  it('`repo settings` shows the defaults, maps an image prefix and gives the repository its own webhook secret, printed once', async () => {
    const shown = await slipway(['repo', 'settings', 'cli/app'], env);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/image prefix: +127\.0\.0\.1:5000\/cli\/app \(the default\)/);
    expect(shown.stdout).toMatch(/webhook secret: the shared SLIPWAY_WEBHOOK_SECRET/);

    const bad = await slipway(['repo', 'settings', 'cli/app', '--image-prefix', 'Not A Prefix'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/image_prefix/);
    const mapped = await slipway(['repo', 'settings', 'cli/app', '--image-prefix', 'registry.example.com/platform/cli'], env);
    expect(mapped.code).toBe(0);
    expect(mapped.stdout).toMatch(/registry\.example\.com\/platform\/cli \(mapped; the default is 127\.0\.0\.1:5000\/cli\/app\)/);

    const made = await slipway(['repo', 'settings', 'cli/app', '--generate-webhook-secret'], env);
    expect(made.code).toBe(0);
    const secret = made.stdout.trim();
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    expect(made.stderr).toMatch(/shown once/);
    const push = pushPayload({ repo: 'cli/app', ref: 'refs/heads/main', sha: 'e'.repeat(40) });
    expect((await deliver(intake.url, { event: 'push', payload: push })).status).toBe(401);
    expect((await deliver(intake.url, { event: 'push', payload: push, secret })).status).toBe(202);
    expect((await slipway(['repo', 'settings', 'cli/app'], env)).stdout).not.toContain(secret);
    expect((await slipway(['repo', 'settings', 'cli/app', '--shared-webhook-secret', '--default-image-prefix'], env)).stdout).toMatch(/the default\)\nwebhook secret: the shared/);
  });

  it('exits 2 on bad usage or invalid input and 1 on a failed operation, with a message', async () => {
    const usage = await slipway(['build', 'cli/app'], env);
    expect(usage.code).toBe(2);
    const badRepo = await slipway(['builds', '--repo', 'not-a-repo'], env);
    expect(badRepo.code).toBe(2);
    expect(badRepo.stderr).toMatch(/owner\/name/);
    const noSha = await slipway(['build', 'cli/app', '--ref', 'never'], env);
    expect(noSha.code).toBe(2);
    expect(noSha.stderr).toMatch(/sha/);
    const unknown = await slipway(['build', 'cli/none', '--ref', 'main', '--sha', 'f'.repeat(40)], env);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/no repository cli\/none/);
    const noToken = await slipway(['builds'], { SLIPWAY_URL: intake.url });
    expect(noToken.code).toBe(2);
    expect(noToken.stderr).toMatch(/SLIPWAY_TOKEN/);
    const badToken = await slipway(['builds'], { SLIPWAY_URL: intake.url, SLIPWAY_TOKEN: 'nope' });
    expect(badToken.code).toBe(1);
    expect(badToken.stderr).toMatch(/SLIPWAY_TOKEN/);
    const port = await freePort();
    const down = await slipway(['builds'], { SLIPWAY_URL: `http://127.0.0.1:${port}`, SLIPWAY_TOKEN: 'x' });
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/cannot reach slipway/);
  });
});
