import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { buildKeys, type BuildRecord, type DeliveryDecision, type DeliveryStore } from '../store/index.js';
import type { Decide } from './decide.js';
import { WebhookError } from './errors.js';
import { readDelivery, type Delivery } from './read.js';
import { sourceEventFromPush } from './source-event.js';
import type { Verify } from './verify.js';

export interface WebhookRequest {
  headers: IncomingHttpHeaders;
  /** The raw body exactly as received: the signature covers these bytes. */
  body: Buffer;
}

export interface WebhookAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** Framework-free intake: any HTTP adapter hands it the headers and raw body and sends back its answer. */
export type WebhookHandler = (req: WebhookRequest) => Promise<WebhookAnswer>;

export interface WebhookHandlerOptions {
  verify: Verify;
  decide: Decide;
  /** Stores the records and their jobs atomically (src/queue Lanes.submit); resolves once they are in Redis. */
  enqueue: (builds: BuildRecord[], lane: { concurrency: number; cancelSuperseded: boolean }) => Promise<{ superseded: string[] }>;
  deliveries: DeliveryStore;
  log: Logger;
  clock: () => Date;
  /** Registers `slipway_webhook_deliveries_total{outcome}` here when given. */
  metrics?: Registry;
}

const IGNORED_EVENTS: Record<string, string> = {
  create: 'create events build nothing (tags are built from their push)',
  pull_request: 'pull_request events build nothing (rules build branches and tags)',
};

/**
 * Verify, dedupe, normalise, decide, enqueue: one delivery in, one answer out.
 * The 202 is sent only after the build records and their jobs are in Redis; any failure of
 * Redis answers 503 and gives the delivery id back, so GitHub's redelivery is decided afresh.
 */
export function createWebhookHandler(o: WebhookHandlerOptions): WebhookHandler {
  const outcomes = new Counter({
    name: 'slipway_webhook_deliveries_total',
    help: 'GitHub webhook deliveries by outcome',
    labelNames: ['outcome'] as const,
    registers: o.metrics ? [o.metrics] : [],
  });

  const refuse = (err: WebhookError): WebhookAnswer => {
    outcomes.inc({ outcome: err.status === 401 ? 'unauthorized' : 'bad_request' });
    o.log.warn({ status: err.status, code: err.code }, `webhook refused: ${err.message}`);
    return { status: err.status, body: { error: err.message, code: err.code, errors: [] } };
  };

  return async ({ headers, body }) => {
    let delivery: Delivery;
    try {
      delivery = await readDelivery(headers, body, o.verify);
    } catch (err) {
      if (err instanceof WebhookError) return refuse(err);
      throw err;
    }
    const { deliveryId, event, payload, push } = delivery;

    const at = o.clock();
    let claimed = false;
    let recorded = false;
    try {
      const source = push ? sourceEventFromPush(push) : undefined;
      // Claim and decide together: both read Redis, in the same round trip.
      const [fresh, decision] = await Promise.all([
        o.deliveries.claim(deliveryId),
        source ? o.decide(source, deliveryId, at) : Promise.resolve(undefined),
      ]);
      if (!fresh) {
        outcomes.inc({ outcome: 'duplicate' });
        o.log.info({ deliveryId, event }, 'webhook: redelivery, nothing queued');
        return { status: 200, body: { deliveryId, duplicate: true } };
      }
      claimed = true;

      const repo = (payload.repository as { full_name?: unknown } | undefined)?.full_name;
      const record: DeliveryDecision = {
        deliveryId,
        event,
        repo: decision?.repo ?? (typeof repo === 'string' ? repo : null),
        ref: source?.ref ?? null,
        sha: source?.sha ?? null,
        receivedAt: at.toISOString(),
        outcome: 'ignored',
        ignored: null,
        builds: [],
        matched: [],
        skipped: decision?.skipped ?? [],
        warnings: decision?.warnings ?? [],
        superseded: [],
      };
      let answer: WebhookAnswer;
      if (event === 'ping') {
        record.outcome = 'ping';
        answer = { status: 200, body: { deliveryId, ping: 'pong', zen: payload.zen ?? null } };
      } else if (!decision) {
        record.ignored = IGNORED_EVENTS[event] ?? `${event} events build nothing`;
        answer = { status: 202, body: { deliveryId, builds: [], ignored: record.ignored } };
      } else if (decision.ignored) {
        record.ignored = decision.ignored;
        answer = { status: 202, body: { deliveryId, builds: [], ignored: record.ignored } };
      } else {
        record.outcome = 'accepted';
        record.builds = decision.builds.map((b) => b.id);
        record.matched = decision.builds.map((b) => ({ rules: b.rules, tags: b.tags }));
        if (decision.builds.length) {
          // Queue and record in one round trip: the record is sent in the same tick, after the
          // submission, and is stored only if the first build is there (else it is recorded below).
          const queued = o.enqueue(decision.builds, decision.lane);
          const stored = o.deliveries.recordQueued(record, buildKeys.record(decision.builds[0]!.id));
          const [q, r] = await Promise.allSettled([queued, stored]);
          recorded = r.status === 'fulfilled' && r.value !== null;
          if (q.status === 'rejected') {
            const err: unknown = q.reason;
            if ((err as { code?: unknown }).code !== 'duplicate_build') throw err;
            // Queued by an earlier attempt that died before recording its decision: record it now.
            if (!recorded) await o.deliveries.record(record);
            outcomes.inc({ outcome: 'duplicate' });
            return { status: 200, body: { deliveryId, duplicate: true } };
          }
          record.superseded = q.value.superseded;
        }
        answer = {
          status: 202,
          body: { deliveryId, builds: record.builds, skipped: record.skipped, warnings: record.warnings, superseded: record.superseded },
        };
      }
      try {
        if (!recorded) await o.deliveries.record(record);
      } catch (err) {
        // Builds already queued are durable and must not be queued twice: answer as accepted.
        if (record.builds.length === 0) throw err;
        o.log.error({ err, deliveryId }, 'webhook: builds queued but the delivery decision was not stored');
      }
      outcomes.inc({ outcome: record.outcome });
      o.log.info(
        { deliveryId, event, repo: record.repo, ref: record.ref, builds: record.builds, ignored: record.ignored, skipped: record.skipped },
        record.ignored ? `webhook ignored: ${record.ignored}` : `webhook ${record.outcome}: ${record.builds.length} build(s)`,
      );
      return answer;
    } catch (err) {
      outcomes.inc({ outcome: 'unavailable' });
      o.log.error({ err, deliveryId, event }, 'webhook not accepted: storage unavailable');
      if (claimed) await o.deliveries.release(deliveryId).catch(() => undefined);
      return {
        status: 503,
        body: { error: `not accepted, try again (GitHub redelivers): ${(err as Error).message}`, code: 'unavailable', errors: [] },
      };
    }
  };
}
