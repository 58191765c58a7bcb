import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { compileConfig, loadConfig, previewRef, RulesError, type RepoConfig } from '../rules/index.js';

/** `slipway rules check` and `slipway rules preview` (../shared/spec/rules.md): JSON on stdout, problems on stderr, exit 2. */
export function registerRulesCommands(program: Command): void {
  const rules = program.command('rules').description('check build-rule configs and preview what a push would build');

  rules
    .command('check')
    .description('validate a config file; prints the normalised config as JSON (what the API would store)')
    .requiredOption('--config <file>', 'the repository config, YAML or JSON')
    .action((opts: { config: string }) => {
      const config = readConfig(opts.config);
      if (config) print(config);
    });

  rules
    .command('preview')
    .description('print, as JSON, what a push of --ref would build: builds, tags, skipped rules and warnings')
    .requiredOption('--config <file>', 'the repository config, YAML or JSON')
    .requiredOption('--ref <ref>', 'the pushed ref: refs/heads/<branch> or refs/tags/<tag> (a bare name is a branch)')
    .option('--sha <sha>', 'the commit (40 hex)', '0'.repeat(40))
    .option('--changed <path>', 'a changed file, from the repository root; repeat once per path', collect, [] as string[])
    .action((opts: { config: string; ref: string; sha: string; changed: string[] }) => {
      const config = readConfig(opts.config);
      if (!config) return;
      try {
        print(previewRef(compileConfig(config), { ref: opts.ref, sha: opts.sha, changed: opts.changed }));
      } catch (err) {
        if (!(err instanceof RulesError)) throw err;
        fail(err.problems.map((p) => `slipway: --${p.path.replace(/\[\d+\]$/, '')}: ${p.message}`));
      }
    });
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** The validated config, or null after printing why not (exit code 2). */
function readConfig(file: string): RepoConfig | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    fail([`slipway: cannot read config file ${file}: ${why}`]);
    return null;
  }
  try {
    return loadConfig(text, { filename: file });
  } catch (err) {
    if (!(err instanceof RulesError)) throw err;
    const n = err.problems.length;
    fail([
      `${file}: invalid configuration (${n} problem${n === 1 ? '' : 's'}):`,
      ...err.problems.map((p) => (p.path ? `${file}: ${p.path}: ${p.message}` : `${file}: ${p.message}`)),
    ]);
    return null;
  }
}

function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

function fail(lines: string[]): void {
  process.stderr.write(`${lines.join('\n')}\n`);
  process.exitCode = 2;
}
