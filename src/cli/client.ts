import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { action, callApi as call, CliFailure, repoArg } from './api-client.js';
import type { BuildRecord } from '../store/index.js';
import { registerRepoSettingsCommand } from './settings.js';
import { printTable } from './table.js';

function printBuilds(builds: BuildRecord[]): void {
  if (builds.length === 0) {
    process.stdout.write('no builds\n');
    return;
  }
  const rows = builds.map((b) => [b.id, b.repo, b.ref.replace(/^refs\/(heads|tags)\//, ''), b.sha.slice(0, 7), b.status, b.tags.join(','), b.queuedAt]);
  printTable(['ID', 'REPO', 'REF', 'SHA', 'STATUS', 'TAGS', 'QUEUED'], rows);
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
  registerRepoSettingsCommand(repo);

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
