import { badRequest } from '../errors.js';
import type { RouteModule } from './index.js';

/** `POST /api/rules/preview`: the same JSON as `slipway rules preview` (src/rules decides). */
export const previewRoutes: RouteModule = (router, { requireRole, rules }) => {
  router.post('/api/rules/preview', requireRole('viewer'), (req, res) => {
    const body = req.body as unknown;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw badRequest('send {config, ref, sha?, changed?} as JSON');
    }
    res.json(rules.preview(body as { config: unknown; ref: string }));
  });
};
