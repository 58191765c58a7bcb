import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ConfigError, loadConfig } from '../config.js';
import type { BuildRecord } from '../store/index.js';

/** A failure the CLI reports with its exit code: 1 failed operation, 2 bad usage or invalid input. */
class CliFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
  }
}

interface ApiAnswer {
  status: number;
  body: Record<string, unknown>;
}

function settings(): { url: string; token: string | undefined } {
  try {
    const c = loadConfig();
    return { url: c.url.replace(/\/+$/, ''), token: c.token };
  } catch (err) {
    if (err instanceof ConfigError) throw new CliFailure(err.message, 2);
    throw err;
  }
}

async function call(method: string, path: string, body?: { type: string; text: string }): Promise<ApiAnswer> {
  const { url, token } = settings();
  if (!token) throw new CliFailure('SLIPWAY_TOKEN is not set: export a token (slipway up prints an admin token; POST /api/tokens makes more)', 2);
  let res: Response;
  try {
    res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body ? { 'content-type': body.type } : {}) },
      ...(body ? { body: body.text } : {}),
    });
  } catch (err) {
    throw new CliFailure(`cannot reach slipway at ${url} (${(err as Error).cause ?? (err as Error).message}): is it running? (SLIPWAY_URL)`, 1);
  }
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    parsed = { error: text };
  }
  if (res.status >= 400) throw failure(res.status, parsed);
  return { status: res.status, body: parsed };
}

/** api.md's error shape as a message a person can act on. */
function failure(status: number, body: Record<string, unknown>): CliFailure {
  const problems = Array.isArray(body.errors) ? (body.errors as { path?: string; message?: string }[]) : [];
  const lines = [String(body.error ?? `HTTP ${status}`)];
  if (problems.length > 1 || (problems.length === 1 && !lines[0]!.includes(problems[0]!.message ?? ''))) {
    for (const p of problems) lines.push(`  ${p.path ? `${p.path}: ` : ''}${p.message}`);
  }
  if (status === 401) lines.push('check SLIPWAY_TOKEN');
  if (status === 403) lines.push('ask an admin for a token with a higher role');
  // Invalid input is the caller's to fix (2); anything else is a failed operation (1).
  return new CliFailure(lines.join('\n'), status === 400 || status === 422 ? 2 : 1);
}

function repoArg(value: string): string {
  if (!/^[A-Za-z0-9._-]+\/[A-Za-z0-9._-]+$/.test(value)) throw new CliFailure(`not a repository: "${value}" (expected owner/name)`, 2);
  return value;
}

function printBuilds(builds: BuildRecord[]): void {
  if (builds.length === 0) {
    process.stdout.write('no builds\n');
    return;
  }
  const rows = builds.map((b) => [b.id, b.repo, b.ref.replace(/^refs\/(heads|tags)\//, ''), b.sha.slice(0, 7), b.status, b.tags.join(','), b.queuedAt]);
  const head = ['ID', 'REPO', 'REF', 'SHA', 'STATUS', 'TAGS', 'QUEUED'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [head, ...rows]) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
}

/** Runs a command body and turns failures into a message on stderr and the exit code. */
function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args) => {
    try {
      await fn(...args);
    } catch (err) {
      if (err instanceof CliFailure) {
        process.stderr.write(`${err.message}\n`);
        process.exit(err.exitCode);
      }
      throw err;
    }
  };
}

/** `slipway repo set`, `slipway builds`, `slipway build`: clients of the API (SLIPWAY_URL, SLIPWAY_TOKEN). */
export function registerClientCommands(program: Command): void {
  const repo = program.command('repo').description('repositories and their build configs');
  repo
    .command('set <repo>')
    .description('store the build config of owner/name (YAML or JSON file)')
    .requiredOption('--config <file>', 'the config document')
    .action(
      action(async (name: string, opts: { config: string }) => {
        const r = repoArg(name);
        let text: string;
        try {
          text = await readFile(opts.config, 'utf8');
        } catch (err) {
          throw new CliFailure(`cannot read ${opts.config}: ${(err as Error).message}`, 2);
        }
        const type = opts.config.toLowerCase().endsWith('.json') ? 'application/json' : 'application/yaml';
        const { body } = await call('PUT', `/api/repos/${r}`, { type, text });
        const rules = Array.isArray(body.rules) ? `${body.rules.length} rule(s)` : 'the default rule';
        process.stdout.write(`stored the config of ${r}: ${rules}, image ${String(body.image)}\n`);
      }),
    );

  program
    .command('builds')
    .description('list builds, newest first')
    .option('--repo <repo>', 'only this owner/name')
    .option('--status <status>', 'only this status (queued running succeeded failed cancelled superseded)')
    .option('--limit <n>', 'at most n (default 50, at most 500)')
    .option('--json', 'print the records as JSON')
    .action(
      action(async (opts: { repo?: string; status?: string; limit?: string; json?: boolean }) => {
        const q = new URLSearchParams();
        if (opts.repo) q.set('repo', repoArg(opts.repo));
        if (opts.status) q.set('status', opts.status);
        if (opts.limit) q.set('limit', opts.limit);
        const { body } = await call('GET', `/api/builds${q.size ? `?${q}` : ''}`);
        const builds = body.builds as BuildRecord[];
        if (opts.json) process.stdout.write(`${JSON.stringify(builds, null, 2)}\n`);
        else printBuilds(builds);
      }),
    );

  program
    .command('build <repo>')
    .description('build owner/name by hand (also rules with autobuild: false)')
    .requiredOption('--ref <ref>', 'refs/heads/X, refs/tags/X, or a branch name')
    .option('--sha <sha>', 'the commit (default: the last pushed commit of the ref)')
    .option('--rule <name>', 'only this rule')
    .action(
      action(async (name: string, opts: { ref: string; sha?: string; rule?: string }) => {
        const r = repoArg(name);
        const payload = { ref: opts.ref, ...(opts.sha ? { sha: opts.sha } : {}), ...(opts.rule ? { rule: opts.rule } : {}) };
        const { body } = await call('POST', `/api/repos/${r}/builds`, { type: 'application/json', text: JSON.stringify(payload) });
        const ids = body.builds as string[];
        process.stdout.write(`queued ${ids.length} build(s) of ${r} ${opts.ref}: ${ids.join(' ')}\n`);
        for (const w of (body.warnings as string[] | undefined) ?? []) process.stderr.write(`warning: ${w}\n`);
      }),
    );
}
