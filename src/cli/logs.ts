import type { Command } from 'commander';
import { action, fetchApi } from './api-client.js';

/** `slipway logs ID [-f]`: a build's log from the API; `-f` follows it live until the build ends. */

function request(id: string, follow: boolean): Promise<Response> {
  return fetchApi('GET', `/api/builds/${encodeURIComponent(id)}/log`, { accept: follow ? 'text/event-stream' : 'text/plain' });
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
    .action(
      action(async (id: string, opts: { follow?: boolean }) => {
        const res = await request(id, !!opts.follow);
        if (!opts.follow) {
          process.stdout.write(await res.text());
          return;
        }
        const end = await follow(res, process.stdout);
        process.stderr.write(`build ${id} ${end.status}${end.error ? `: ${end.error}` : ''}\n`);
      }),
    );
}
