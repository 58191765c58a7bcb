/** Pipeline metrics for /metrics: lanes, builds and rollouts (see pipeline.ts). */
export { registerPipelineMetrics, type PipelineEvent, type PipelineSources } from './pipeline.js';
