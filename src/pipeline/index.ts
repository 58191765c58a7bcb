export { Lifecycle, type LifecycleOptions, type AutoDeployer } from './lifecycle.js';
export { createFeedbackBus, publishBuilds, type FeedbackSettings } from './feedback.js';
