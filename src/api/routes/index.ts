import type { Router } from 'express';
import { createDashboard } from '../../dashboard/index.js';
import type { RouteContext } from '../deps.js';
import { buildRoutes } from './builds.js';
import { deliveryRoutes } from './deliveries.js';
import { environmentRoutes } from './environments.js';
import { eventRoutes } from './events.js';
import { healthRoutes } from './health.js';
import { logRoutes } from './logs.js';
import { previewRoutes } from './preview.js';
import { repoRoutes } from './repos.js';
import { settingsRoutes } from './settings.js';
import { tokenRoutes } from './tokens.js';

/** A route module adds its routes (full paths) to the router it is given. */
export type RouteModule = (router: Router, ctx: RouteContext) => void;

/**
 * Every route module, mounted in this order. To add yours (e.g. logs, environments),
 * import it above and append it here: that is the only change needed.
 */
export const routeModules: RouteModule[] = [
  healthRoutes,
  tokenRoutes,
  repoRoutes,
  settingsRoutes,
  previewRoutes,
  buildRoutes,
  logRoutes,
  deliveryRoutes,
  eventRoutes,
  environmentRoutes,
  (router) => void router.use(createDashboard()), // the web dashboard: GET / and /ui/** (src/dashboard)
];
