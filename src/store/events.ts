import type { Redis } from 'ioredis';
import type { BuildRecord, DeploymentRecord } from './records.js';
import { keys } from './keys.js';

export type SlipwayEvent = { type: 'build'; record: BuildRecord } | { type: 'deployment'; record: DeploymentRecord };
export type EventListener = (event: SlipwayEvent) => void;

/**
 * Build and deployment state changes over Redis pub/sub, so every API process sees what any
 * worker did. Publishing uses the shared connection; the first subscriber opens one dedicated
 * subscriber connection for the whole process (not one per SSE client).
 */
export class EventBus {
  private sub: Redis | undefined;
  private readonly listeners = new Set<EventListener>();
  private readonly closers = new Set<() => void>();

  /** `onPublish` sees every event this process publishes (e.g. GitHub feedback), once, wherever it subscribes. */
  constructor(
    private readonly redis: Redis,
    private readonly opts: { onPublish?: EventListener } = {},
  ) {}

  async publish(event: SlipwayEvent): Promise<void> {
    await this.redis.publish(keys.events, JSON.stringify(event));
    this.opts.onPublish?.(event);
  }

  /**
   * Calls `listener` for every event from now on, and `onClose` when the bus closes (the process
   * stops: event streams end then instead of holding the shutdown up); answers the unsubscribe function.
   */
  async subscribe(listener: EventListener, onClose?: () => void): Promise<() => void> {
    this.listeners.add(listener);
    if (onClose) this.closers.add(onClose);
    if (!this.sub) {
      const sub = this.redis.duplicate({ enableOfflineQueue: true });
      // It reconnects and resubscribes by itself; a lost connection is not an error of the caller.
      sub.on('error', () => undefined);
      this.sub = sub;
      sub.on('message', (_channel: string, message: string) => {
        const event = JSON.parse(message) as SlipwayEvent;
        for (const l of this.listeners) l(event);
      });
      await sub.subscribe(keys.events);
    }
    return () => {
      this.listeners.delete(listener);
      if (onClose) this.closers.delete(onClose);
    };
  }

  async close(): Promise<void> {
    this.listeners.clear();
    const closers = [...this.closers];
    this.closers.clear();
    for (const c of closers) c();
    const sub = this.sub;
    this.sub = undefined;
    if (sub) sub.disconnect();
  }
}
