import { z } from 'zod';
import { mayAccess, principal, unscoped } from '../auth.js';
import { notFound, parseInput } from '../errors.js';
import type { RouteModule } from './index.js';

const Query = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(50) });

/** What slipway decided about each webhook delivery (newest first), kept ≥ 7 days. */
export const deliveryRoutes: RouteModule = (router, { requireRole, deliveries }) => {
  router.get('/api/deliveries', requireRole('viewer'), async (req, res) => {
    const { limit } = parseInput(Query, req.query, 'query');
    const who = principal(res);
    const all = await deliveries.list(unscoped(who) ? limit : 1000);
    // Deliveries of repositories a scoped token may not see (or of none) are left out.
    res.json({ deliveries: (unscoped(who) ? all : all.filter((d) => d.repo !== null && mayAccess(who, d.repo))).slice(0, limit) });
  });

  router.get('/api/deliveries/:id', requireRole('viewer'), async (req, res) => {
    const found = await deliveries.get(req.params.id as string);
    const who = principal(res);
    if (!found || !(unscoped(who) || (found.repo !== null && mayAccess(who, found.repo)))) throw notFound(`no delivery ${req.params.id} (unknown, or older than the dedupe window)`);
    res.json(found);
  });
};
