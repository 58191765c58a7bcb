import express from 'express';
import type { RouteModule } from './index.js';

/** `POST /webhooks/github`: the raw body goes to the framework-free handler of src/webhooks. */
export const webhookRoutes: RouteModule = (router, { webhook, webhookMaxBytes }) => {
  router.post('/webhooks/github', express.raw({ type: () => true, limit: webhookMaxBytes }), async (req, res) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const answer = await webhook({ headers: req.headers, body });
    res.status(answer.status).json(answer.body);
  });
};
