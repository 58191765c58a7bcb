import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { appFiles as fixtureFiles } from '../test/fixtures/apps/index.js';

const run = promisify(execFile);

/**
 * The demo's sample application: the node-api fixture (test/fixtures/apps/node-api), a real
 * TypeScript service whose image runs `npm ci` and `tsc` in a build stage, on the Node base image
 * made on this machine. Each demo version sets the Dockerfile's APP_VERSION default, which the app
 * answers on `/`; a "broken" version renames its /healthz route, so its containers never become
 * healthy and the rollout rolls back on its own.
 */
export interface AppVersion {
  version: string;
  healthy: boolean;
}

export async function appFiles(v: AppVersion): Promise<Record<string, string>> {
  const files = await fixtureFiles('node-api');
  const replace = (file: string, from: RegExp, to: string) => {
    const text = files[file];
    if (!text || !from.test(text)) throw new Error(`the node-api fixture's ${file} no longer has ${from}`);
    files[file] = text.replace(from, to);
  };
  replace('Dockerfile', /^ARG APP_VERSION=.*$/m, `ARG APP_VERSION=${v.version}`);
  if (!v.healthy) replace('src/server.ts', /'\/healthz'/, "'/health'");
  return files;
}

/** What the app answers on `/` (`{"name": "node-api", "version": "v1", …}`), told in a few words. */
export function describeAnswer(body: string): string {
  try {
    const answer = JSON.parse(body) as { name?: string; version?: string; node?: string };
    return `${answer.name} ${answer.version} (node ${answer.node})`;
  } catch {
    return body;
  }
}

/** The app answered `/` as the given version. */
export function answersVersion(body: string | undefined, version: string): boolean {
  try {
    return body !== undefined && (JSON.parse(body) as { version?: string }).version === version;
  } catch {
    return false;
  }
}

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', args, {
    cwd,
    env: {
      PATH: process.env.PATH,
      HOME: cwd,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_AUTHOR_NAME: 'Demo Developer',
      GIT_AUTHOR_EMAIL: 'dev@example.com',
      GIT_COMMITTER_NAME: 'Demo Developer',
      GIT_COMMITTER_EMAIL: 'dev@example.com',
    },
  });
  return stdout.trim();
}

export interface Commit {
  sha: string;
  before: string;
  message: string;
  added: string[];
  modified: string[];
  removed: string[];
}

/**
 * A developer's working copy pushing to a bare repository (what the git server serves):
 * `commit()` writes the files of a version, commits and pushes main.
 */
export class SampleRepo {
  private constructor(readonly work: string, readonly bare: string) {}

  static async create(root: string, fullName: string): Promise<SampleRepo> {
    const bare = join(root, 'git', `${fullName}.git`);
    const work = join(root, 'work', fullName);
    await mkdir(bare, { recursive: true });
    await mkdir(work, { recursive: true });
    await git(bare, 'init', '-q', '--bare', '-b', 'main');
    await git(work, 'init', '-q', '-b', 'main');
    await git(work, 'remote', 'add', 'origin', bare);
    return new SampleRepo(work, bare);
  }

  async commit(files: Record<string, string>, message: string, remove: string[] = []): Promise<Commit> {
    const before = await git(this.work, 'rev-parse', '--verify', '-q', 'HEAD').catch(() => '0'.repeat(40));
    for (const [path, content] of Object.entries(files)) {
      await mkdir(join(this.work, path, '..'), { recursive: true });
      await writeFile(join(this.work, path), content);
    }
    for (const path of remove) await git(this.work, 'rm', '-q', '--ignore-unmatch', path);
    await git(this.work, 'add', '-A');
    await git(this.work, 'commit', '-q', '-m', message);
    const sha = await git(this.work, 'rev-parse', 'HEAD');
    const status = before.startsWith('0000')
      ? (await git(this.work, 'show', '--name-only', '--format=', sha)).split('\n').filter(Boolean).map((p) => `A\t${p}`)
      : (await git(this.work, 'diff', '--name-status', before, sha)).split('\n').filter(Boolean);
    const pick = (k: string) => status.filter((l) => l.startsWith(k)).map((l) => l.split('\t')[1]!);
    await git(this.work, 'push', '-q', 'origin', 'main');
    return { sha, before, message, added: pick('A'), modified: pick('M'), removed: pick('D') };
  }
}
