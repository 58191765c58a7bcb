import { createWebhookListener, WEBHOOK_PATH } from '../../webhooks/index.js';
import type { RouteModule } from './index.js';

/**
 * `POST /webhooks/github`: the raw body goes to the framework-free handler of src/webhooks.
 * (`slipway serve` routes this path to the same listener before express, see src/main.ts.)
 */
export const webhookRoutes: RouteModule = (router, { webhook, webhookMaxBytes, log }) => {
  const listener = createWebhookListener(webhook, { maxBytes: webhookMaxBytes, log });
  router.post(WEBHOOK_PATH, (req, res) => listener(req, res));
};
