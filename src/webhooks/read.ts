import type { IncomingHttpHeaders } from 'node:http';
import { WebhookError } from './errors.js';
import { PushPayload } from './source-event.js';
import type { Verify } from './verify.js';

/** A delivery whose signature, headers and body checked out. */
export interface Delivery {
  deliveryId: string;
  event: string;
  payload: Record<string, unknown>;
  /** The push fields slipway reads, for `push` events. */
  push: PushPayload | undefined;
}

const DELIVERY_ID = /^[A-Za-z0-9._-]{1,128}$/;

function header(h: IncomingHttpHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The JSON text of a delivery: GitHub sends it as is, or form-encoded in `payload=`. */
function payloadText(contentType: string | undefined, raw: string): string {
  if (contentType === 'application/json') return raw; // what GitHub sends by default: nothing to take apart
  const type = (contentType ?? 'application/json').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/json') return raw;
  if (type === 'application/x-www-form-urlencoded') {
    const payload = new URLSearchParams(raw).get('payload');
    if (payload === null) throw new WebhookError(400, 'malformed body: form-encoded delivery without a payload= field', 'malformed');
    return payload;
  }
  throw new WebhookError(415, `unsupported Content-Type ${type}: GitHub sends application/json or application/x-www-form-urlencoded`, 'unsupported_media_type');
}

function parseJson(text: string): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new WebhookError(400, `malformed JSON body: ${(err as Error).message}`, 'malformed');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new WebhookError(400, 'malformed body: the payload must be a JSON object', 'malformed');
  }
  return body as Record<string, unknown>;
}

/** The repository a payload names, read before its signature is checked (to pick the secret). */
function repositoryOf(payload: Record<string, unknown> | undefined): string | null {
  const name = (payload?.repository as { full_name?: unknown } | undefined)?.full_name;
  return typeof name === 'string' ? name : null;
}

/**
 * Checks one delivery in the order docs/api.md gives: signature over the raw bytes (401), GitHub's
 * headers (400), content type (415), body (400). The body is parsed first only to learn which
 * repository's secret signs it; a body that does not parse is checked against the shared secret,
 * and its problem is told only once the signature holds. Throws WebhookError; nothing is recorded before.
 */
export async function readDelivery(headers: IncomingHttpHeaders, body: Buffer, verify: Verify): Promise<Delivery> {
  const signature = header(headers, 'x-hub-signature-256');
  if (!signature) throw new WebhookError(401, 'missing X-Hub-Signature-256 header: set the webhook secret in GitHub', 'unsigned');
  const raw = body.toString('utf8');
  let payload: Record<string, unknown> | undefined;
  let unreadable: unknown;
  try {
    payload = parseJson(payloadText(header(headers, 'content-type'), raw));
  } catch (err) {
    unreadable = err;
  }
  if (!(await verify(raw, signature, repositoryOf(payload)))) {
    throw new WebhookError(401, 'X-Hub-Signature-256 does not match: check the webhook secret (the repository\'s own, when it has one)', 'bad_signature');
  }
  const event = header(headers, 'x-github-event');
  if (!event) throw new WebhookError(400, 'missing X-GitHub-Event header', 'missing_header');
  const deliveryId = header(headers, 'x-github-delivery');
  if (!deliveryId) throw new WebhookError(400, 'missing X-GitHub-Delivery header', 'missing_header');
  if (!DELIVERY_ID.test(deliveryId)) throw new WebhookError(400, 'malformed X-GitHub-Delivery header', 'malformed');
  if (!payload) throw unreadable;
  let push: PushPayload | undefined;
  if (event === 'push') {
    const parsed = PushPayload.safeParse(payload);
    if (!parsed.success) {
      const where = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      throw new WebhookError(400, `malformed push payload: ${where}`, 'malformed');
    }
    push = parsed.data;
  }
  return { deliveryId, event, payload, push };
}
