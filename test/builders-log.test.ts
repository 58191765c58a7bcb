import { symlink, mkdtemp, rm, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatEntry, LogFollowers, openBuildLog, readLog } from '../src/builders/index.js';
import { packContext } from '../src/builders/context.js';
import { startRedis, type TestRedis } from '../dev/redis.js';

/** The build log stream in a real Redis, and the build context packer on real directories. */

let redisServer: TestRedis;
let redis: Redis;
let followers: LogFollowers;

beforeAll(async () => {
  redisServer = await startRedis();
  redis = new Redis(redisServer.url);
  followers = new LogFollowers({ redis, readers: 1, idleMs: 100 });
});

afterAll(async () => {
  await followers.close();
  redis.disconnect();
  await redisServer.stop();
});

describe('build log stream', () => {
  it('keeps lines and steps in order with their time, and closes with the end entry', async () => {
    let now = 1_000_000;
    const log = openBuildLog(redis, 'log-order', { clock: () => now });
    log.step('fetch source');
    now += 1500;
    log.line('fetching file:///x at abc');
    log.step('build');
    await log.end('succeeded');
    const entries = await readLog(redis, 'log-order');
    expect(entries.map((e) => [e.kind, e.text, e.at])).toEqual([
      ['step', 'fetch source', 1_000_000],
      ['line', 'fetching file:///x at abc', 1_001_500],
      ['step', 'build', 1_001_500],
      ['end', 'succeeded', 1_001_500],
    ]);
    expect(entries.map((e) => formatEntry(e, 1_000_000))).toEqual([
      '==> [0.0s] fetch source',
      'fetching file:///x at abc',
      '==> [1.5s] build',
      '==> [1.5s] build succeeded',
    ]);
    // Written after the end: ignored.
    log.line('late');
    await log.flush();
    expect(await readLog(redis, 'log-order')).toHaveLength(4);
    expect(await redis.ttl('slipway:build:log-order:log')).toBeGreaterThan(0);
  });

  it('is bounded: output beyond maxLines is dropped behind one cut marker, long lines are cut', async () => {
    const log = openBuildLog(redis, 'log-cut', { maxLines: 5, maxLineLength: 10 });
    for (let i = 0; i < 12; i++) log.line(`line ${i}`);
    log.line('x'.repeat(50));
    await log.end('failed', 'step [2/2] RUN make: exit code: 2');
    const entries = await readLog(redis, 'log-cut');
    expect(entries.map((e) => e.kind)).toEqual(['line', 'line', 'line', 'line', 'line', 'cut', 'end']);
    expect(entries[5]!.text).toContain('more than 5 lines');
    expect(entries[6]!.text).toBe('failed: step [2/2] RUN make: exit code: 2 (8 lines not kept)');

    const long = openBuildLog(redis, 'log-long', { maxLineLength: 10 });
    long.line('y'.repeat(50));
    await long.end('succeeded');
    expect((await readLog(redis, 'log-long'))[0]!.text).toBe(`${'y'.repeat(10)}… [line cut at 10 characters]`);
  });

  it('follows live until the end entry, and resumes after a given entry id', async () => {
    const log = openBuildLog(redis, 'log-follow');
    log.step('one');
    await log.flush();
    const seen: string[] = [];
    const following = (async () => {
      for await (const e of followers.follow('log-follow')) seen.push(`${e.kind}:${e.text}`);
    })();
    await new Promise((r) => setTimeout(r, 300));
    log.line('two');
    await log.flush();
    await new Promise((r) => setTimeout(r, 300));
    await log.end('cancelled', 'cancelled by alice');
    await following;
    expect(seen).toEqual(['step:one', 'line:two', 'end:cancelled: cancelled by alice']);

    const all = await readLog(redis, 'log-follow');
    const resumed: string[] = [];
    for await (const e of followers.follow('log-follow', { after: all[0]!.id })) resumed.push(e.text);
    expect(resumed).toEqual(['two', 'cancelled: cancelled by alice']);
  });

  it('stops following a log nobody closed once the build has ended', async () => {
    const log = openBuildLog(redis, 'log-orphan');
    log.line('only line');
    await log.flush();
    let over = false;
    const seen: string[] = [];
    const following = (async () => {
      for await (const e of followers.follow('log-orphan', { isOver: async () => over })) seen.push(e.text);
    })();
    await new Promise((r) => setTimeout(r, 250));
    // Written just before the build ended: still read after `isOver` says so.
    log.line('last line');
    await log.flush();
    over = true;
    await following;
    expect(seen).toEqual(['only line', 'last line']);
  });
});

async function tarNames(stream: NodeJS.ReadableStream): Promise<string[]> {
  const names: string[] = [];
  const extract = tar.extract();
  extract.on('entry', (header, body, next) => {
    names.push(header.type === 'directory' ? `${header.name}/` : header.name);
    body.on('end', next);
    body.resume();
  });
  const done = new Promise<void>((r) => extract.on('finish', () => r()));
  stream.pipe(extract as unknown as NodeJS.WritableStream);
  await done;
  return names.sort();
}

describe('build context', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'slipway-ctx-'));
    const files: Record<string, string> = {
      '.git/HEAD': 'ref: refs/heads/main\n',
      'README.md': 'top\n',
      'services/web/Dockerfile': 'FROM x\n',
      'services/web/docker/prod.Dockerfile': 'FROM y\n',
      'services/web/.dockerignore': '*.log\nsecrets/\ndocs/**\n!docs/keep.md\ndocker/prod.Dockerfile\n',
      'services/web/app.js': 'js\n',
      'services/web/debug.log': 'log\n',
      'services/web/secrets/key': 'k\n',
      'services/web/docs/a.md': 'a\n',
      'services/web/docs/keep.md': 'keep\n',
    };
    for (const [name, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(root, name)), { recursive: true });
      await writeFile(path.join(root, name), content);
    }
    await symlink('/etc', path.join(root, 'escape'));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('packs the context directory, honouring .dockerignore with exceptions, without .git', async () => {
    const ctx = await packContext(root, 'services/web', 'Dockerfile');
    expect(await tarNames(ctx.tar)).toEqual(['.dockerignore', 'Dockerfile', 'app.js', 'docker/', 'docs/', 'docs/keep.md'].sort());
    const whole = await packContext(root, '.', 'services/web/Dockerfile');
    const names = await tarNames(whole.tar);
    expect(names).toContain('README.md');
    expect(names.some((n) => n.startsWith('.git'))).toBe(false);
  });

  it('always sends the Dockerfile, even one that .dockerignore names', async () => {
    const ctx = await packContext(root, 'services/web', 'docker/prod.Dockerfile');
    expect(ctx.dockerfile).toBe('docker/prod.Dockerfile');
    expect(await tarNames(ctx.tar)).toContain('docker/prod.Dockerfile');
  });

  it('refuses a missing Dockerfile, a missing context, and a context that leaves the repository', async () => {
    await expect(packContext(root, 'services/web', 'Nope.Dockerfile')).rejects.toMatchObject({
      code: 'context_invalid',
      message: 'Dockerfile services/web/Nope.Dockerfile not found at this commit',
    });
    await expect(packContext(root, 'services/api', 'Dockerfile')).rejects.toMatchObject({ code: 'context_invalid' });
    await expect(packContext(root, 'escape', 'Dockerfile')).rejects.toMatchObject({
      code: 'context_invalid',
      message: 'context escape leaves the repository',
    });
  });
});
