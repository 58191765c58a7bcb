import { timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import { roleAtLeast, type Role, type TokenStore } from '../store/index.js';
import { repoAllowed } from '../auth/index.js';
import { ApiError } from './errors.js';
import type { AuthThrottle } from './limits.js';

export interface Principal {
  name: string;
  role: Role;
  /** Repository globs it may act on; admins act on every repository whatever this says. */
  repos: readonly string[];
}

/** Whether the caller may see and act on `repo`: everything another repository holds is 404 to it. */
export function mayAccess(p: Principal, repo: string): boolean {
  return p.role === 'admin' || repoAllowed(p.repos, repo);
}

/**
 * Throws `hidden` (a 404, the same answer as for something absent) unless the caller may access
 * `repo`: a token never learns what another repository holds, nor that it exists.
 */
export function checkAccess(res: Response, repo: string, hidden: () => Error): void {
  if (!mayAccess(principal(res), repo)) throw hidden();
}

/** Acts on every repository (no scope to filter lists by). */
export function unscoped(p: Principal): boolean {
  return p.role === 'admin' || p.repos.includes('*');
}

export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The caller, once `requireRole` has let it through. */
export function principal(res: Response): Principal {
  const p = res.locals.principal as Principal | undefined;
  if (!p) throw new Error('principal() used on a route without requireRole()');
  return p;
}

/**
 * The token of a request: `Authorization: Bearer <token>`; for event streams only, also
 * `?access_token=` because browsers' EventSource cannot send headers.
 */
function bearer(req: Request): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '');
  if (m) return m[1];
  const q = req.query.access_token;
  if (req.method === 'GET' && typeof q === 'string' && q && (req.get('accept') ?? '').includes('text/event-stream')) return q;
  return undefined;
}

export type RequireRole = (role: Role) => RequestHandler;

/**
 * `requireRole(role)`: `Authorization: Bearer <token>`; missing, unknown, revoked or expired token →
 * 401, known token whose role is below `role` → 403. SLIPWAY_ADMIN_TOKEN is accepted as given (name
 * `admin`). Which repositories the caller may act on is each route's check (`mayAccess`).
 */
export function createRequireRole(tokens: TokenStore, adminToken: string | undefined, clock: () => Date, throttle: AuthThrottle): RequireRole {
  return (role) => async (req, res, next) => {
    const address = req.socket.remoteAddress ?? 'unknown';
    throttle.check(address);
    const refuse = (message: string) => {
      throttle.failed(address);
      return new ApiError(401, message, 'unauthenticated');
    };
    const token = bearer(req);
    if (!token) throw refuse('missing credentials: send Authorization: Bearer <token>');
    if (adminToken && sameSecret(token, adminToken)) {
      res.locals.principal = { name: 'admin', role: 'admin', repos: ['*'] } satisfies Principal;
      return next();
    }
    const found = await tokens.lookup(token);
    if (!found) throw refuse('invalid token: it is unknown or was revoked');
    if (found.expiresAt !== null && Date.parse(found.expiresAt) <= clock().getTime()) {
      throw refuse(`token "${found.name}" expired at ${found.expiresAt}: ask an admin for a new one`);
    }
    if (!roleAtLeast(found.role, role)) {
      throw new ApiError(403, `role too low: this needs ${role}, token "${found.name}" is ${found.role}`, 'forbidden');
    }
    res.locals.principal = { name: found.name, role: found.role, repos: found.repos } satisfies Principal;
    next();
  };
}
