import type { Command } from 'commander';
import { ConfigError, loadConfig, type Config } from '../config.js';
import type { Running } from '../main.js';

/** The composition root is loaded only by the server commands, so client commands start fast. */
const main = () => import('../main.js');

/** Flags override the environment. */
function configFrom(opts: { port?: string; host?: string; redis?: string }): Config {
  return loadConfig(process.env, {
    ...(opts.port !== undefined ? { port: Number(opts.port) } : {}),
    ...(opts.host !== undefined ? { host: opts.host } : {}),
    ...(opts.redis !== undefined ? { redisUrl: opts.redis } : {}),
  });
}

/** Starts a process kind, then stops it on SIGTERM/SIGINT (a second signal exits at once). */
async function run(kind: string, start: (config: Config) => Promise<Running>, opts: { port?: string; host?: string; redis?: string }, hardLimitMs: number): Promise<void> {
  let config: Config;
  try {
    config = configFrom(opts);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`slipway ${kind}: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  let running: Running | undefined;
  let stopping = false;
  const close = (r: Running) =>
    r.close().then(
      () => process.exit(0),
      (err: Error) => {
        process.stderr.write(`slipway ${kind}: stop failed: ${err.message}\n`);
        process.exit(1);
      },
    );
  const stop = (signal: string) => {
    if (stopping) process.exit(1);
    stopping = true;
    process.stderr.write(`slipway ${kind}: ${signal}, stopping\n`);
    setTimeout(() => process.exit(1), hardLimitMs).unref();
    if (running) void close(running);
  };
  // Listening before starting: a signal that arrives right after the "listening" line (before
  // start() has returned) stops the process cleanly instead of killing it.
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    running = await start(config);
  } catch (err) {
    process.stderr.write(`slipway ${kind}: ${(err as Error).message}\n`);
    process.exit(1);
  }
  if (stopping) void close(running);
}

/** `slipway serve`, `slipway worker`, `slipway up`. */
export function registerServerCommands(program: Command): void {
  const common = (c: Command) =>
    c
      .option('--port <port>', 'HTTP port (SLIPWAY_PORT, default 3000)')
      .option('--host <host>', 'HTTP interface (SLIPWAY_HOST, default 127.0.0.1)')
      .option('--redis <url>', 'Redis URL (SLIPWAY_REDIS_URL)');

  common(program.command('serve').description('run the API, webhook intake and dashboard')).action(async (opts) => {
    // serve finishes requests in flight and exits within 10 s.
    await run('serve', async (config) => (await main()).startServe(config), opts, 10_000);
  });

  program
    .command('worker')
    .description('run builds (and deploys) from the queue')
    .option('--redis <url>', 'Redis URL (SLIPWAY_REDIS_URL)')
    .action(async (opts) => {
      // A worker lets a build finish for SHUTDOWN_GRACE, hands it back, and exits within 30 s.
      await run('worker', async (config) => (await main()).startWorker(config), opts, 30_000);
    });

  common(program.command('up').description('run everything on this machine (starts a private Redis when SLIPWAY_REDIS_URL is unset)')).action(async (opts) => {
    await run(
      'up',
      async (config) => {
        const [{ startUp }, { createLogger }] = await Promise.all([import('./up.js'), main()]);
        const up = await startUp(config, { log: createLogger(config) });
        process.stdout.write(
          [
            `slipway is up: ${up.url}`,
            `  webhook URL:     ${up.url}/webhooks/github   (content type application/json)`,
            `  webhook secret:  ${up.webhookSecret}`,
            `  admin token:     ${up.adminToken}`,
            `  try: SLIPWAY_URL=${up.url} SLIPWAY_TOKEN=${up.adminToken} npx slipway builds`,
            '',
          ].join('\n'),
        );
        return up;
      },
      opts,
      30_000,
    );
  });
}
