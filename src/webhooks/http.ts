import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { WebhookHandler } from './handler.js';

export const WEBHOOK_PATH = '/webhooks/github';

function send(res: ServerResponse, status: number, body: unknown, close = false): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(text);
}

/**
 * The node:http adapter of the webhook handler: reads the raw body (at most `maxBytes`, else 413)
 * and sends the handler's answer. Plain node:http, so the server can route the webhook to it
 * before express (the hot path stays lean) and express can mount the same function.
 */
export function createWebhookListener(handler: WebhookHandler, o: { maxBytes: number; log: Logger }): (req: IncomingMessage, res: ServerResponse) => void {
  const tooLarge = { error: `request body too large: GitHub deliveries are at most ${o.maxBytes} bytes`, code: 'too_large', errors: [] };
  return (req, res) => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > o.maxBytes) {
      // Answer at once and stop reading; the connection closes after the answer.
      send(res, 413, tooLarge, true);
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > o.maxBytes) {
        refused = true;
        send(res, 413, tooLarge, true);
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      if (refused) return;
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      handler({ headers: req.headers, body }).then(
        (answer) => send(res, answer.status, answer.body),
        (err: Error) => {
          o.log.error({ err }, 'webhook handler failed');
          send(res, 500, { error: 'internal error (see the server log)', code: 'internal', errors: [] });
        },
      );
    });
  };
}
