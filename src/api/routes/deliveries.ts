import { z } from 'zod';
import { notFound, parseInput } from '../errors.js';
import type { RouteModule } from './index.js';

const Query = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(50) });

/** What slipway decided about each webhook delivery (newest first), kept ≥ 7 days. */
export const deliveryRoutes: RouteModule = (router, { requireRole, deliveries }) => {
  router.get('/api/deliveries', requireRole('viewer'), async (req, res) => {
    const { limit } = parseInput(Query, req.query, 'query');
    res.json({ deliveries: await deliveries.list(limit) });
  });

  router.get('/api/deliveries/:id', requireRole('viewer'), async (req, res) => {
    const found = await deliveries.get(req.params.id as string);
    if (!found) throw notFound(`no delivery ${req.params.id} (unknown, or older than the dedupe window)`);
    res.json(found);
  });
};
