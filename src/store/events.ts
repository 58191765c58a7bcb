import type { Redis } from 'ioredis';
import type { BuildRecord, DeploymentRecord } from './records.js';
import { keys } from './keys.js';
import { unpackBuildEvent, type PackedBuildEvent } from './builds.js';

export type SlipwayEvent = { type: 'build'; record: BuildRecord } | { type: 'deployment'; record: DeploymentRecord };
export type EventListener = (event: SlipwayEvent) => void;

/**
 * Build and deployment state changes over Redis pub/sub, so every API process sees what any
 * worker did. Publishing uses the shared connection; the first subscriber opens one dedicated
 * subscriber connection for the whole process (not one per SSE client).
 */
export interface SubscribeOptions {
  /** Called when the bus closes (the process stops): event streams end then instead of holding the shutdown up. */
  onClose?: () => void;
  /**
   * Also receive the records of builds that have not started: queued, or ended before they ran
   * (default true). A listener that follows only runs (metrics) leaves them out: they are the bulk
   * of a busy intake's events.
   */
  queued?: boolean;
}

/**
 * The channel of an event: builds that have not started (queued, handed back, or ended before they
 * ran: superseded or cancelled while queued) have their own (keys.eventsQueued).
 */
export function eventChannel(event: SlipwayEvent): string {
  return event.type === 'build' && event.record.startedAt === null ? keys.eventsQueued : keys.events;
}

/**
 * A message holds one event, or (published by the lanes' submit script, one per group commit) a
 * JSON array of packed build events in the order they happened.
 */
function decodeMessage(message: string): SlipwayEvent[] {
  const parsed = JSON.parse(message) as SlipwayEvent | PackedBuildEvent[];
  if (!Array.isArray(parsed)) return [parsed];
  return parsed.map((e) => ({ type: 'build', record: unpackBuildEvent(e) }));
}

export class EventBus {
  private sub: Redis | undefined;
  private subscribedQueued: Promise<unknown> | undefined;
  /** listener → whether it receives the records of builds that have not started */
  private readonly listeners = new Map<EventListener, boolean>();
  private readonly closers = new Set<() => void>();

  /** `onPublish` sees every event this process publishes (e.g. GitHub feedback), once, wherever it subscribes. */
  constructor(
    private readonly redis: Redis,
    private readonly opts: { onPublish?: EventListener } = {},
  ) {}

  async publish(event: SlipwayEvent): Promise<void> {
    await this.redis.publish(eventChannel(event), JSON.stringify(event));
    this.opts.onPublish?.(event);
  }

  /**
   * Calls `listener` for every event from now on (in the order they were published), and
   * `onClose` when the bus closes; answers the unsubscribe function. The queued records' channel
   * is subscribed to only once a listener wants them, so a process whose listeners follow only
   * starts and ends is not sent every new build.
   */
  async subscribe(listener: EventListener, o: SubscribeOptions = {}): Promise<() => void> {
    const queued = o.queued ?? true;
    this.listeners.set(listener, queued);
    if (o.onClose) this.closers.add(o.onClose);
    if (!this.sub) {
      const sub = this.redis.duplicate({ enableOfflineQueue: true });
      // It reconnects and resubscribes by itself; a lost connection is not an error of the caller.
      sub.on('error', () => undefined);
      this.sub = sub;
      sub.on('message', (channel: string, message: string) => {
        const isQueued = channel === keys.eventsQueued;
        let events: SlipwayEvent[] | undefined;
        for (const [l, wantsQueued] of this.listeners) {
          if (isQueued && !wantsQueued) continue;
          events ??= decodeMessage(message);
          for (const event of events) l(event);
        }
      });
      await sub.subscribe(keys.events);
    }
    // One connection for both channels: its messages arrive in the order they were published.
    if (queued) await (this.subscribedQueued ??= this.sub.subscribe(keys.eventsQueued));
    return () => {
      this.listeners.delete(listener);
      if (o.onClose) this.closers.delete(o.onClose);
    };
  }

  async close(): Promise<void> {
    this.listeners.clear();
    const closers = [...this.closers];
    this.closers.clear();
    for (const c of closers) c();
    const sub = this.sub;
    this.sub = undefined;
    this.subscribedQueued = undefined;
    if (sub) sub.disconnect();
  }
}
