import type { Command } from 'commander';
import { ConfigError, loadConfig } from '../config.js';

/** `slipway logs ID [-f]`: a build's log from the API; `-f` follows it live until the build ends. */

class LogsFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
  }
}

function settings(): { url: string; token: string } {
  let c;
  try {
    c = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) throw new LogsFailure(err.message, 2);
    throw err;
  }
  if (!c.token) throw new LogsFailure('SLIPWAY_TOKEN is not set: export a token (slipway up prints an admin token; POST /api/tokens makes more)', 2);
  return { url: c.url.replace(/\/+$/, ''), token: c.token };
}

async function request(id: string, follow: boolean): Promise<Response> {
  const { url, token } = settings();
  let res: Response;
  try {
    res = await fetch(`${url}/api/builds/${encodeURIComponent(id)}/log`, {
      headers: { authorization: `Bearer ${token}`, accept: follow ? 'text/event-stream' : 'text/plain' },
    });
  } catch (err) {
    throw new LogsFailure(`cannot reach slipway at ${url} (${String((err as Error).cause ?? (err as Error).message)}): is it running? (SLIPWAY_URL)`, 1);
  }
  if (!res.ok) {
    const body = await res.text();
    let message = `HTTP ${res.status}`;
    try {
      message = String((JSON.parse(body) as { error?: string }).error ?? message);
    } catch {
      // not JSON: keep the status
    }
    if (res.status === 401) message += '\ncheck SLIPWAY_TOKEN';
    throw new LogsFailure(message, 1);
  }
  return res;
}

/** Prints server-sent log events as lines until the `end` event; answers the build's final status. */
async function follow(res: Response, out: NodeJS.WritableStream): Promise<{ status: string; error: string | null }> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let cut: number;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length === 0) continue;
      if (event === 'end' && data[0]!.startsWith('{')) return JSON.parse(data.join('\n')) as { status: string; error: string | null };
      out.write(`${data.join('\n')}\n`);
    }
  }
  return { status: 'unknown', error: null };
}

export function registerLogsCommands(program: Command): void {
  program
    .command('logs <id>')
    .description('print a build\'s log (-f: follow it until the build ends)')
    .option('-f, --follow', 'follow the log live until the build ends')
    .action(async (id: string, opts: { follow?: boolean }) => {
      try {
        const res = await request(id, !!opts.follow);
        if (!opts.follow) {
          process.stdout.write(await res.text());
          return;
        }
        const end = await follow(res, process.stdout);
        process.stderr.write(`build ${id} ${end.status}${end.error ? `: ${end.error}` : ''}\n`);
      } catch (err) {
        if (err instanceof LogsFailure) {
          process.stderr.write(`${err.message}\n`);
          process.exit(err.exitCode);
        }
        throw err;
      }
    });
}
