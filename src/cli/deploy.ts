import type { Command } from 'commander';
import { action, callApi, CliFailure, repoArg, sendJson } from './api-client.js';
import type { DeploymentRecord } from '../store/index.js';

interface ServiceView {
  name: string;
  service: string;
  role: string;
  source: string;
  replicas: number;
  ports: string[];
}

interface EnvironmentView {
  name: string;
  service: string;
  services?: ServiceView[];
  current: DeploymentRecord | null;
  history: DeploymentRecord[];
}

/** A JSON call; rollouts' bodies are read as the records api.md defines. */
async function call(method: string, path: string, json?: unknown): Promise<{ status: number; body: any }> {
  return json === undefined ? callApi(method, path) : sendJson(method, path, json);
}

function envArg(value: string): string {
  if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(value)) throw new CliFailure(`not an environment name: "${value}"`, 2);
  return value;
}

function describe(d: DeploymentRecord): string {
  const what = d.services ? d.services.map((s) => `${s.name}@${s.digest.slice(7, 19)}`).join(' ') : `${d.image}@${d.digest}`;
  return `revision ${d.revision} (${d.id}) ${what} ${d.status}${d.error ? `: ${d.error}` : ''}`;
}

/** Follows a rollout until it ends; exits 1 unless it succeeded. */
async function follow(id: string): Promise<void> {
  let last = '';
  for (;;) {
    const { body } = await call('GET', `/api/deployments/${encodeURIComponent(id)}`);
    const d = body as DeploymentRecord;
    // A release reports each service's step as it goes.
    const now = d.services ? `${d.status}${d.phase === 'rolling_back' ? ' (rolling back)' : ''}: ${d.services.map((s) => `${s.name} ${s.status}`).join(', ')}` : d.status;
    if (now !== last) process.stderr.write(`${now}\n`);
    last = now;
    if (d.status !== 'pending' && d.status !== 'running') {
      process.stdout.write(`${describe(d)}\n`);
      if (d.status !== 'succeeded') throw new CliFailure(`rollout ${d.id} ended ${d.status}`, 1);
      return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function printTable(head: string[], rows: string[][], indent = ''): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [head, ...rows]) process.stdout.write(`${indent}${r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
}

function printStatus(envs: EnvironmentView[]): void {
  const rows = envs.map((e) => {
    const latest = e.history[0];
    const rolling = latest && (latest.status === 'pending' || latest.status === 'running') ? `${latest.status} r${latest.revision}` : '';
    return [e.name, e.service, e.current ? `r${e.current.revision}` : '-', e.current ? e.current.digest.slice(0, 19) : '-', e.current?.finishedAt ?? '-', rolling || (latest && latest.status !== 'succeeded' ? `last r${latest.revision} ${latest.status}` : '')];
  });
  printTable(['ENV', 'SERVICE', 'CURRENT', 'DIGEST', 'SINCE', 'ROLLOUT'], rows);
}

/**
 * The services of an application environment: what its current release runs, and where the newest
 * release stands service by service while it rolls (or how it ended, when it did not succeed).
 */
function printServices(e: EnvironmentView): void {
  if (!e.services) return;
  const latest = e.history[0];
  const showLatest = latest && latest.id !== e.current?.id;
  const rows = e.services.map((s) => {
    const running = e.current?.services?.find((c) => c.name === s.name);
    const next = showLatest ? latest.services?.find((c) => c.name === s.name) : undefined;
    const release = next ? `r${latest.revision} ${next.status}${next.status !== 'pending' && next.digest !== running?.digest ? ` → ${next.digest.slice(0, 19)}` : ''}` : '';
    return [s.name, s.service, s.role, s.role === 'job' ? '-' : String(s.replicas), s.ports.join(',') || '-', running ? running.digest.slice(0, 19) : '-', release];
  });
  process.stdout.write(`\n${e.name}: ${e.services.length} services, in rollout order\n`);
  printTable(['NAME', 'SWARM SERVICE', 'ROLE', 'REPLICAS', 'PORTS', 'DIGEST', 'RELEASE'], rows, '  ');
  if (showLatest && latest.error) process.stdout.write(`  r${latest.revision} ${latest.status}: ${latest.error}\n`);
}

/** `slipway promote`, `slipway rollback`, `slipway status`: clients of the API (SLIPWAY_URL, SLIPWAY_TOKEN). */
export function registerDeployCommands(program: Command): void {
  program
    .command('promote <repo>')
    .description('roll out to an environment exactly the digest its promote_from environment runs')
    .option('--env <env>', 'the environment to promote to', 'production')
    .option('--wait', 'follow the rollout; exit 1 unless it succeeds')
    .action(
      action(async (name: string, opts: { env: string; wait?: boolean }) => {
        const repo = repoArg(name);
        const env = envArg(opts.env);
        const { status, body } = await call('POST', `/api/repos/${repo}/environments/${env}/promote`);
        const d = body as DeploymentRecord;
        if (status === 200) {
          process.stdout.write(`${env} already ${d.status === 'succeeded' ? 'runs' : 'is rolling out'} ${d.digest}: nothing to do (${describe(d)})\n`);
          return;
        }
        process.stdout.write(`promoting ${repo} ${env} to ${d.digest}: ${describe(d)}\n`);
        if (opts.wait) await follow(d.id);
      }),
    );

  program
    .command('rollback <repo>')
    .description('roll an environment back to an earlier good revision (default: the one before the current)')
    .requiredOption('--env <env>', 'the environment')
    .option('--revision <n>', 'the revision to roll back to')
    .option('--wait', 'follow the rollout; exit 1 unless it succeeds')
    .action(
      action(async (name: string, opts: { env: string; revision?: string; wait?: boolean }) => {
        const repo = repoArg(name);
        const env = envArg(opts.env);
        let revision: number | undefined;
        if (opts.revision !== undefined) {
          revision = Number(opts.revision);
          if (!Number.isInteger(revision) || revision < 1) throw new CliFailure(`--revision must be a positive integer, not "${opts.revision}"`, 2);
        }
        const { body } = await call('POST', `/api/repos/${repo}/environments/${env}/rollback`, revision !== undefined ? { revision } : {});
        const d = body as DeploymentRecord;
        process.stdout.write(`rolling ${repo} ${env} back to ${d.digest}: ${describe(d)}\n`);
        if (opts.wait) await follow(d.id);
      }),
    );

  program
    .command('status <repo>')
    .description('what each environment of owner/name runs, and rollouts in progress')
    .option('--env <env>', 'only this environment, with its history')
    .option('--json', 'print JSON')
    .action(
      action(async (name: string, opts: { env?: string; json?: boolean }) => {
        const repo = repoArg(name);
        if (opts.env) {
          const { body } = await call('GET', `/api/repos/${repo}/environments/${envArg(opts.env)}`);
          const e = body as EnvironmentView;
          if (opts.json) return void process.stdout.write(`${JSON.stringify(e, null, 2)}\n`);
          printStatus([e]);
          printServices(e);
          if (e.history.length > 0) process.stdout.write('\nhistory:\n');
          for (const d of e.history) process.stdout.write(`  ${d.trigger.padEnd(8)} by ${d.by}: ${describe(d)}\n`);
          return;
        }
        const { body } = await call('GET', `/api/repos/${repo}/environments`);
        const envs = body.environments as EnvironmentView[];
        if (opts.json) return void process.stdout.write(`${JSON.stringify(envs, null, 2)}\n`);
        if (envs.length === 0) process.stdout.write(`${repo} has no environments\n`);
        else {
          printStatus(envs);
          for (const e of envs) printServices(e);
        }
      }),
    );
}
