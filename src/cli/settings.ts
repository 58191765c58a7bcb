import type { Command } from 'commander';
import { action, callApi as call, CliFailure, repoArg } from './api-client.js';

interface SettingsView {
  repo: string;
  imagePrefix: string;
  defaultImagePrefix: string;
  webhookSecret: 'own' | 'shared';
  updatedAt: string | null;
  updatedBy: string | null;
  webhookSecretValue?: string;
}

function describe(s: SettingsView): string {
  const prefix = s.imagePrefix === s.defaultImagePrefix ? `${s.imagePrefix} (the default)` : `${s.imagePrefix} (mapped; the default is ${s.defaultImagePrefix})`;
  const secret = s.webhookSecret === 'own' ? 'its own' : 'the shared SLIPWAY_WEBHOOK_SECRET';
  const when = s.updatedAt ? `\nchanged:        ${s.updatedAt} by ${s.updatedBy}` : '';
  return `repository:     ${s.repo}\nimage prefix:   ${prefix}\nwebhook secret: ${secret}${when}\n`;
}

/** `slipway repo settings owner/name [...]`: show, or (admin) change, a repository's operator settings. */
export function registerRepoSettingsCommand(repo: Command): void {
  repo
    .command('settings <repo>')
    .description("show a repository's operator settings; with options (admin), change them")
    .option('--image-prefix <prefix>', 'images of the repository must lie under this (host[:port]/path)')
    .option('--default-image-prefix', 'back to <registry>/<owner>/<name>')
    .option('--generate-webhook-secret', 'give the repository its own webhook secret, printed once on stdout: set it on its GitHub webhook')
    .option('--shared-webhook-secret', 'back to the shared SLIPWAY_WEBHOOK_SECRET')
    .action(
      action(async (name: string, opts: { imagePrefix?: string; defaultImagePrefix?: boolean; generateWebhookSecret?: boolean; sharedWebhookSecret?: boolean }) => {
        const r = repoArg(name);
        if (opts.imagePrefix && opts.defaultImagePrefix) throw new CliFailure('give --image-prefix or --default-image-prefix, not both', 2);
        if (opts.generateWebhookSecret && opts.sharedWebhookSecret) throw new CliFailure('give --generate-webhook-secret or --shared-webhook-secret, not both', 2);
        const change = {
          ...(opts.imagePrefix ? { image_prefix: opts.imagePrefix } : opts.defaultImagePrefix ? { image_prefix: null } : {}),
          ...(opts.generateWebhookSecret ? { webhook_secret: 'generate' } : opts.sharedWebhookSecret ? { webhook_secret: null } : {}),
        };
        const path = `/api/repos/${r}/settings`;
        const { body } = Object.keys(change).length === 0 ? await call('GET', path) : await call('PUT', path, { type: 'application/json', text: JSON.stringify(change) });
        const settings = body as unknown as SettingsView;
        if (settings.webhookSecretValue) {
          process.stderr.write(`${describe(settings)}the new webhook secret (shown once) follows on stdout; until GitHub has it, the repository's deliveries are refused\n`);
          process.stdout.write(`${settings.webhookSecretValue}\n`);
          return;
        }
        process.stdout.write(describe(settings));
      }),
    );
}
