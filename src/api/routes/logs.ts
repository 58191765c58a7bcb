import { formatEntry, LogFollowersClosedError, readLog, type LogEntry } from '../../builders/index.js';
import { TERMINAL_BUILD_STATUSES } from '../../store/index.js';
import { mayAccess, principal } from '../auth.js';
import { sseData } from '../limits.js';
import { notFound } from '../errors.js';
import type { RouteModule } from './index.js';

const HEARTBEAT_MS = 15_000;

/**
 * `GET /api/builds/{id}/log`: the build's log as text/plain (steps as `==> [12.3s] name`), or with
 * `Accept: text/event-stream` server-sent events (`event: line|step|cut`, data: the rendered line,
 * `id`: the entry id, so `Last-Event-ID` resumes) that follow until the build ends (`event: end`).
 */
export const logRoutes: RouteModule = (router, { requireRole, builds, redis, streams, logFollowers }) => {
  router.get('/api/builds/:id/log', requireRole('viewer'), async (req, res) => {
    const id = req.params.id as string;
    const record = await builds.get(id);
    if (!record || !mayAccess(principal(res), record.repo)) throw notFound(`no build ${id}`);

    if (!String(req.headers.accept ?? '').includes('text/event-stream')) {
      const entries: LogEntry[] = [];
      for (let page = await readLog(redis, id); page.length > 0; page = await readLog(redis, id, page.at(-1)!.id)) entries.push(...page);
      const start = entries[0]?.at ?? 0;
      res.type('text/plain; charset=utf-8').send(entries.map((e) => `${formatEntry(e, start)}\n`).join(''));
      return;
    }

    const release = streams.take(principal(res).name);
    req.on('close', release);
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(': following\n\n');
    const ac = new AbortController();
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), HEARTBEAT_MS);
    req.on('close', () => ac.abort());
    const lastEventId = req.headers['last-event-id'];
    let start: number | undefined;
    try {
      const isOver = async () => {
        const now = await builds.get(id);
        return !now || TERMINAL_BUILD_STATUSES.includes(now.status);
      };
      for await (const e of logFollowers.follow(id, { signal: ac.signal, isOver, ...(typeof lastEventId === 'string' ? { after: lastEventId } : {}) })) {
        start ??= e.at;
        res.write(`id: ${e.id}\nevent: ${e.kind}\n${sseData(formatEntry(e, start))}\n\n`);
      }
      if (!ac.signal.aborted) {
        const final = await builds.get(id);
        res.write(`event: end\ndata: ${JSON.stringify({ status: final?.status ?? 'unknown', error: final?.error ?? null })}\n\n`);
      }
    } catch (err) {
      // The process is stopping: the stream just ends, and the client resumes elsewhere with Last-Event-ID.
      if (!(err instanceof LogFollowersClosedError)) throw err;
    } finally {
      release();
      clearInterval(heartbeat);
      res.end();
    }
  });
};
