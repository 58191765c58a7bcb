import { timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import { roleAtLeast, type Role, type TokenStore } from '../store/index.js';
import { ApiError } from './errors.js';

export interface Principal {
  name: string;
  role: Role;
}

function sameSecret(a: string, b: string): boolean {
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
 * `requireRole(role)`: `Authorization: Bearer <token>`; missing or unknown token → 401,
 * known token whose role is below `role` → 403. SLIPWAY_ADMIN_TOKEN is accepted as given (name `admin`).
 */
export function createRequireRole(tokens: TokenStore, adminToken: string | undefined): RequireRole {
  return (role) => async (req, res, next) => {
    const token = bearer(req);
    if (!token) throw new ApiError(401, 'missing credentials: send Authorization: Bearer <token>', 'unauthenticated');
    const found: Principal | null =
      adminToken && sameSecret(token, adminToken) ? { name: 'admin', role: 'admin' } : await tokens.lookup(token);
    if (!found) throw new ApiError(401, 'invalid token: it is unknown or was revoked', 'unauthenticated');
    if (!roleAtLeast(found.role, role)) {
      throw new ApiError(403, `role too low: this needs ${role}, token "${found.name}" is ${found.role}`, 'forbidden');
    }
    res.locals.principal = { name: found.name, role: found.role } satisfies Principal;
    next();
  };
}
