import type { Command } from 'commander';
import { action, callApi as call, CliFailure } from './api-client.js';
import type { TokenInfo } from '../store/index.js';
import { printTable } from './table.js';

const ROLES = ['viewer', 'developer', 'deployer', 'admin'];

/** `slipway token create|list|revoke`: API tokens (admin), clients of /api/tokens. */
export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('API tokens: create, list, revoke (admin)');
  token
    .command('create <name>')
    .description('create a token; it is printed once, on stdout')
    .requiredOption('--role <role>', `one of ${ROLES.join(', ')}`)
    .option('--repos <globs>', 'comma-separated repositories it may act on (acme/*,tools/cli); default all')
    .option('--expires-in <lifetime>', 'how long it lives: 90m, 12h, 30d; default forever')
    .action(
      action(async (name: string, opts: { role: string; repos?: string; expiresIn?: string }) => {
        if (!ROLES.includes(opts.role)) throw new CliFailure(`--role must be one of ${ROLES.join(', ')}, not ${opts.role}`, 2);
        const payload = {
          name,
          role: opts.role,
          ...(opts.repos ? { repos: opts.repos.split(',').map((r) => r.trim()).filter(Boolean) } : {}),
          ...(opts.expiresIn ? { expires_in: opts.expiresIn } : {}),
        };
        const { body } = await call('POST', '/api/tokens', { type: 'application/json', text: JSON.stringify(payload) });
        const info = body as unknown as TokenInfo & { token: string };
        process.stderr.write(`created token ${info.name}: ${info.role} on ${info.repos.join(', ')}${info.expiresAt ? `, expires ${info.expiresAt}` : ''} (shown once)\n`);
        process.stdout.write(`${info.token}\n`);
      }),
    );
  token
    .command('list')
    .description('every token: name, role, repositories, expiry (never the secret)')
    .option('--json', 'print the records as JSON')
    .action(
      action(async (opts: { json?: boolean }) => {
        const { body } = await call('GET', '/api/tokens');
        const list = body.tokens as (TokenInfo & { expired: boolean })[];
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
          return;
        }
        const rows = list.map((t) => [t.name, t.role, t.repos.join(','), t.expiresAt ? `${t.expiresAt}${t.expired ? ' (expired)' : ''}` : 'never', t.createdBy, t.createdAt]);
        printTable(['NAME', 'ROLE', 'REPOS', 'EXPIRES', 'CREATED BY', 'CREATED'], rows);
      }),
    );
  token
    .command('revoke <name>')
    .description('revoke a token at once')
    .action(
      action(async (name: string) => {
        await call('DELETE', `/api/tokens/${encodeURIComponent(name)}`);
        process.stdout.write(`revoked token ${name}\n`);
      }),
    );
}
