export { createApi } from './app.js';
export type { ApiDeps, RouteContext, LanesPort, BuildsPort } from './deps.js';
export { type Principal, type RequireRole } from './auth.js';
export { conflict, invalid, type FieldProblem } from './errors.js';
export type { RouteModule } from './routes/index.js';
export { claimsOf } from './claims.js';
