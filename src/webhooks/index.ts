export { createWebhookHandler, type WebhookHandler, type WebhookRequest, type WebhookAnswer, type WebhookHandlerOptions } from './handler.js';
export { createVerifier, type Verify } from './verify.js';
export { createDecider, type Decide, type Decision } from './decide.js';
export { CompiledCache, rulesEngine, type RulesEngine } from './engine.js';
export { sourceEventFromPush, skipMarker, PushPayload, type SourceEvent } from './source-event.js';
export { toBuildRecords, type BuildOrigin } from './build-records.js';
export { createWebhookListener, WEBHOOK_PATH } from './http.js';
export { planBuilds, type BuildPlan } from './plan.js';
