import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * The demo's sample application: busybox httpd serving a version string, on the local busybox
 * base image, with a HEALTHCHECK that asks for /healthz. A "broken" version forgets /healthz,
 * so its containers never become healthy and the rollout rolls back on its own.
 */
export interface AppVersion {
  version: string;
  healthy: boolean;
}

export function appFiles(base: string, v: AppVersion): Record<string, string> {
  return {
    Dockerfile: [
      `FROM ${base}`,
      'COPY www /www',
      '# Healthy only when the app answers /healthz.',
      'HEALTHCHECK --interval=2s --timeout=2s --start-period=1s --retries=2 CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/healthz"]',
      'EXPOSE 8080',
      'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]',
      '',
    ].join('\n'),
    'www/index.html': `hello from slipway demo ${v.version}\n`,
    'www/version.txt': `${v.version}\n`,
    ...(v.healthy ? { 'www/healthz': 'ok\n' } : {}),
    'README.md': '# hello\n\nThe slipway demo app: `httpd` serving its version on port 8080.\n',
  };
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
