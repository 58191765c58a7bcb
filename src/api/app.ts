import type { RequestListener } from 'node:http';
import express from 'express';
import { createWebhookListener, WEBHOOK_PATH } from '../webhooks/index.js';
import { registerPipelineMetrics } from '../metrics/index.js';
import { createRequireRole } from './auth.js';
import { AuthThrottle, StreamLimits } from './limits.js';
import type { ApiDeps, RouteContext } from './deps.js';
import { ApiError, errorHandler } from './errors.js';
import { routeModules } from './routes/index.js';

/**
 * The HTTP app: webhook intake (`POST /webhooks/github`, the raw body straight to src/webhooks'
 * framework-free handler: it is the hot path and needs no express), then the JSON API under /api,
 * health, metrics and the dashboard. Routes come from src/api/routes/index.ts (one list, one line
 * per module).
 */
export function createApi(deps: ApiDeps): RequestListener {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const ctx: RouteContext = {
    ...deps,
    requireRole: createRequireRole(deps.tokens, deps.adminToken, deps.clock, new AuthThrottle(deps.limits.authFailuresPerMinute, deps.clock)),
    streams: new StreamLimits(deps.limits.streamsPerToken),
  };

  app.use('/api', express.json({ limit: '5mb' }));
  // PUT of a repository config also takes YAML; parsed by that route.
  app.use('/api', express.text({ type: ['application/yaml', 'application/x-yaml', 'text/yaml'], limit: '5mb' }));

  for (const mount of routeModules) {
    const router = express.Router();
    mount(router, ctx);
    app.use(router);
  }

  // Lane, build and rollout metrics (src/metrics) next to the parts' own on deps.metrics.
  registerPipelineMetrics(deps.metrics, { events: deps.events, builds: deps.builds, clock: deps.clock }).catch((err: Error) =>
    deps.log.warn({ err: err.message }, 'pipeline metrics: not subscribed to events'),
  );

  app.use((req, _res, next) => next(new ApiError(404, `no route ${req.method} ${req.path}`, 'not_found')));
  app.use(errorHandler(deps.log));

  const webhook = createWebhookListener(deps.webhook, { maxBytes: deps.webhookMaxBytes, log: deps.log });
  return (req, res) => {
    if (req.method === 'POST' && (req.url === WEBHOOK_PATH || req.url?.startsWith(`${WEBHOOK_PATH}?`))) webhook(req, res);
    else app(req, res);
  };
}
