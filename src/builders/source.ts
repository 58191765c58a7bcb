import { mkdir } from 'node:fs/promises';
import { BuildError } from './errors.js';
import { exec } from './exec.js';
import { scrub } from './secrets.js';

export interface SourceOptions {
  url: string;
  sha: string;
  /** An empty directory that receives the checkout. */
  dir: string;
  /** The build's repository (owner/name): the GitHub token goes only to its own URL. */
  repo: string;
  /** GitHub token for private repositories: sent only to `https://<githubHost>/<repo>[.git]`, never in arguments or logs. */
  githubToken?: string;
  githubHost?: string;
  signal: AbortSignal;
  log: (line: string) => void;
}

const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

/** Fetches exactly one commit of a repository into `dir` and checks it out (detached). */
export async function fetchSource(opts: SourceOptions): Promise<void> {
  const { url, sha, dir, signal } = opts;
  if (!SHA.test(sha)) throw new BuildError('source_invalid', `not a commit sha: ${sha}`);
  if (!url || url.startsWith('-') || /\s/.test(url)) throw new BuildError('source_invalid', `not a git URL: ${scrub(url)}`);
  const secrets = [opts.githubToken];
  const env = gitEnv(url, opts.githubToken, opts.githubHost ?? 'github.com', opts.repo);
  const git = async (args: string[], quietFail = false) => {
    const res = await exec('git', args, {
      cwd: dir,
      env,
      signal,
      onStderrLine: quietFail ? undefined : (line) => opts.log(scrub(line, secrets)),
    });
    return res;
  };

  const started = Date.now();
  await mkdir(dir, { recursive: true });
  const init = await git(['init', '-q'], true);
  if (init.code !== 0) throw new BuildError('engine_failed', `git init failed: ${init.stderr}`, true);
  opts.log(`fetching ${scrub(url, secrets)} at ${sha}`);
  // Servers with protocol v2 (GitHub, git http-backend, file://) hand out any reachable commit by id.
  let fetched = await git(['fetch', '-q', '--depth', '1', '--no-tags', '--end-of-options', url, sha], true);
  if (fetched.code !== 0 && !signal.aborted && !isUnreachable(fetched.stderr)) {
    opts.log('shallow fetch by commit refused; fetching all branches and tags');
    fetched = await git(['fetch', '-q', '--no-tags', '--end-of-options', url, '+refs/heads/*:refs/remotes/origin/*', '+refs/tags/*:refs/tags/*'], true);
  }
  if (signal.aborted) return;
  if (fetched.code !== 0) {
    throw new BuildError('source_unreachable', `cannot fetch ${scrub(url, secrets)}: ${lastError(scrub(fetched.stderr, secrets))}`);
  }
  const checkout = await git(['-c', 'advice.detachedHead=false', 'checkout', '-q', '--detach', sha], true);
  if (signal.aborted) return;
  if (checkout.code !== 0) {
    throw new BuildError('source_unreachable', `commit ${sha} not found in ${scrub(url, secrets)}: ${lastError(checkout.stderr)}`);
  }
  opts.log(`checked out ${sha} in ${Date.now() - started} ms`);
}

function gitEnv(url: string, token: string | undefined, host: string, repo: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: '/nonexistent',
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_ASKPASS: 'true',
    SSH_ASKPASS: 'true',
  };
  const own = [`https://${host}/${repo}`, `https://${host}/${repo}.git`].map((u) => u.toLowerCase());
  if (token && own.includes(url.toLowerCase())) {
    // Passed through the environment, so the token is neither in the process arguments nor in .git/config;
    // scoped to this repository's URL, so no other repository (nor a redirect elsewhere) receives it.
    const basic = Buffer.from(`x-access-token:${token}`).toString('base64');
    env.GIT_CONFIG_COUNT = '1';
    env.GIT_CONFIG_KEY_0 = `http.${url}.extraheader`;
    env.GIT_CONFIG_VALUE_0 = `AUTHORIZATION: basic ${basic}`;
  }
  return env;
}

function isUnreachable(stderr: string): boolean {
  return /Could not resolve host|Connection refused|Failed to connect|timed out|does not appear to be a git repository|not found|Could not read from remote/i.test(stderr);
}

function lastError(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const fatal = lines.filter((l) => /^(fatal|error):/.test(l));
  return (fatal.at(-1) ?? lines.at(-1) ?? 'git failed').replace(/^(fatal|error):\s*/, '');
}
