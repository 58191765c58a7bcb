import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { BuildRecord, DeliveryDecision, DeliveryStore, Receipt, VersionGuard } from '../store/index.js';
import type { Decide, Decision } from './decide.js';
import { WebhookError } from './errors.js';
import { readDelivery, type Delivery } from './read.js';
import { sourceEventFromPush, type SourceEvent } from './source-event.js';
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
  /**
   * Stores the records, their jobs and the delivery's receipt atomically, unless the receipt's key
   * exists (`duplicate`) or the guard fails (`stale`); resolves once all of it is in Redis
   * (src/queue Lanes.submit).
   */
  enqueue: (
    builds: BuildRecord[],
    opts: { concurrency: number; cancelSuperseded: boolean; receipt: Receipt; guard?: VersionGuard },
  ) => Promise<{ outcome: 'queued' | 'duplicate' | 'stale' | 'replayed'; superseded: string[]; newest?: number }>;
  /** Where decisions are kept (src/store DeliveryStore). */
  deliveries: Pick<DeliveryStore, 'recordOnce' | 'receipt'>;
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
 * Verify, normalise, decide, then dedupe and enqueue in one step: one delivery in, one answer out.
 * The 202 is sent only after the build records, their jobs and the decision are in Redis, written
 * by one script that first checks the delivery id was not decided before (so a redelivery queues
 * nothing, even one racing the first delivery). Any failure of Redis answers 503 with nothing
 * stored, so GitHub's redelivery is decided afresh.
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
  const duplicate = (deliveryId: string, event: string): WebhookAnswer => {
    outcomes.inc({ outcome: 'duplicate' });
    o.log.info({ deliveryId, event }, 'webhook: redelivery, nothing queued');
    return { status: 200, body: { deliveryId, duplicate: true } };
  };

  /** The decision as recorded and answered; nothing is stored yet. */
  const describe = (delivery: Delivery, source: SourceEvent | undefined, at: Date, decision: Decision | undefined): { record: DeliveryDecision; answer: WebhookAnswer } => {
    const { deliveryId, event, payload } = delivery;
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
    if (event === 'ping') {
      record.outcome = 'ping';
      return { record, answer: { status: 200, body: { deliveryId, ping: 'pong', zen: payload.zen ?? null } } };
    }
    record.ignored = !decision ? (IGNORED_EVENTS[event] ?? `${event} events build nothing`) : decision.ignored;
    if (record.ignored) return { record, answer: { status: 202, body: { deliveryId, builds: [], ignored: record.ignored } } };
    record.outcome = 'accepted';
    record.builds = decision!.builds.map((b) => b.id);
    record.matched = decision!.builds.map((b) => ({ rules: b.rules, tags: b.tags }));
    return { record, answer: { status: 202, body: { deliveryId, builds: record.builds, skipped: record.skipped, warnings: record.warnings, superseded: [] } } };
  };

  /**
   * Stores the decision (and queues its builds) unless the delivery was decided before. A push older
   * than its ref's newest accepted one is stored as ignored instead (a replay under a new delivery id).
   */
  const store = async (record: DeliveryDecision, decision: Decision | undefined, pushedAt: number | null): Promise<'stored' | 'replayed' | 'duplicate' | 'stale'> => {
    const guard = decision?.guard ?? undefined;
    if (record.builds.length === 0) {
      const done = await o.deliveries.recordOnce(record, guard);
      return done === 'recorded' ? 'stored' : done;
    }
    const { concurrency, cancelSuperseded } = decision!.lane;
    const receipt = o.deliveries.receipt(record, pushedAt);
    const queued = await o.enqueue(decision!.builds, { concurrency, cancelSuperseded, receipt, guard }).catch(async (err: unknown) => {
      if ((err as { code?: unknown }).code !== 'duplicate_build') throw err;
      // The builds of this delivery exist but its decision does not (it outlived the dedupe
      // window): a redelivery. Its decision is recorded again, so it stays visible.
      await o.deliveries.recordOnce(record);
      return { outcome: 'duplicate' as const, superseded: [] };
    });
    if (queued.outcome === 'replayed') {
      const newest = new Date(queued.newest!).toISOString();
      Object.assign(record, { outcome: 'ignored', builds: [], matched: [], ignored: `replayed: pushed at ${new Date(pushedAt!).toISOString()}, before ${record.ref}'s newest accepted push (pushed at ${newest})` });
      const done = await o.deliveries.recordOnce(record);
      return done === 'recorded' ? 'replayed' : done;
    }
    if (queued.outcome === 'queued') record.superseded = queued.superseded;
    return queued.outcome === 'queued' ? 'stored' : queued.outcome;
  };

  const unavailable = (err: unknown, deliveryId: string | undefined, event: string | undefined): WebhookAnswer => {
    outcomes.inc({ outcome: 'unavailable' });
    o.log.error({ err, deliveryId, event }, 'webhook not accepted: storage unavailable');
    return {
      status: 503,
      body: { error: `not accepted, try again (GitHub redelivers): ${(err as Error).message}`, code: 'unavailable', errors: [] },
    };
  };

  return async ({ headers, body }) => {
    let delivery: Delivery;
    try {
      delivery = await readDelivery(headers, body, o.verify);
    } catch (err) {
      // Anything but a refusal is Redis failing to answer which secret signs the repository.
      return err instanceof WebhookError ? refuse(err) : unavailable(err, undefined, undefined);
    }
    const { deliveryId, event, push } = delivery;

    const at = o.clock();
    try {
      const source = push ? sourceEventFromPush(push) : undefined;
      // Decided with the config this process read last; if it changed meanwhile, the write says
      // `stale` and the push is decided again with the current one.
      for (let attempt = 1; ; attempt++) {
        const decision = source ? await o.decide(source, deliveryId, at, { fresh: attempt > 1 }) : undefined;
        const { record, answer } = describe(delivery, source, at, decision);
        const stored = await store(record, decision, source?.pushedAt ?? null);
        if (stored === 'duplicate') return duplicate(deliveryId, event);
        if (stored === 'stale') {
          if (attempt < 3) continue;
          throw new Error('the repository config kept changing while the delivery was decided');
        }
        if (stored === 'replayed') {
          answer.body = { deliveryId, builds: [], ignored: record.ignored };
        } else if (record.outcome === 'accepted') answer.body.superseded = record.superseded;
        outcomes.inc({ outcome: record.outcome });
        // Checked first: with info lines off, building the line would still cost every delivery.
        if (o.log.isLevelEnabled('info')) {
          o.log.info(
            { deliveryId, event, repo: record.repo, ref: record.ref, builds: record.builds, ignored: record.ignored, skipped: record.skipped },
            record.ignored ? `webhook ignored: ${record.ignored}` : `webhook ${record.outcome}: ${record.builds.length} build(s)`,
          );
        }
        return answer;
      }
    } catch (err) {
      return unavailable(err, deliveryId, event);
    }
  };
}
