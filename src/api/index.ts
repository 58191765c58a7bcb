export { createApi } from './app.js';
export type { ApiDeps, RouteContext, LanesPort, BuildsPort } from './deps.js';
export { createRequireRole, principal, type Principal, type RequireRole } from './auth.js';
export { ApiError, errorHandler, parseInput, fieldProblems, badRequest, notFound, conflict, invalid, type FieldProblem } from './errors.js';
export type { RouteModule } from './routes/index.js';
export { claimsOf } from './claims.js';
