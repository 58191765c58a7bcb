import type { SlipwayEvent } from '../../store/index.js';
import { mayAccess, principal } from '../auth.js';
import type { RouteModule } from './index.js';

const HEARTBEAT_MS = 15_000;

/** `GET /api/events`: server-sent events of build and deployment state changes, with heartbeats. */
export const eventRoutes: RouteModule = (router, { requireRole, events, streams }) => {
  router.get('/api/events', requireRole('viewer'), async (req, res) => {
    const who = principal(res);
    const release = streams.take(who.name);
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(': connected\n\n');
    const send = (event: SlipwayEvent) => {
      if (!mayAccess(who, event.record.repo)) return;
      res.write(`event: ${event.type}\ndata: ${JSON.stringify(event.record)}\n\n`);
    };
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), HEARTBEAT_MS);
    const unsubscribe = await events.subscribe(send, {
      onClose: () => {
        clearInterval(heartbeat);
        res.end();
      },
    });
    req.on('close', () => {
      release();
      clearInterval(heartbeat);
      unsubscribe();
    });
  });
};
