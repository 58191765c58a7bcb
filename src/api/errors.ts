import type { ErrorRequestHandler } from 'express';
import { z } from 'zod';

export interface FieldProblem {
  path: string;
  message: string;
}

/** An error that knows its HTTP answer: `{error, errors?}` per api.md, plus a stable `code`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string,
    readonly errors: FieldProblem[] = [],
    /** With 429 and 503: when to try again (the Retry-After header). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const badRequest = (message: string, errors: FieldProblem[] = []) => new ApiError(400, message, 'bad_request', errors);
export const notFound = (message: string) => new ApiError(404, message, 'not_found');
export const conflict = (message: string) => new ApiError(409, message, 'conflict');
export const invalid = (message: string, errors: FieldProblem[]) => new ApiError(422, message, 'invalid', errors);

/** zod problems as api.md field problems (`rules[0].tags`, `role`). */
export function fieldProblems(error: z.ZodError): FieldProblem[] {
  return error.issues.map((i) => ({
    path: i.path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)), ''),
    message: i.message,
  }));
}

/** Parses a request body (or query) with a schema; a body of the wrong shape is 422 with every problem. */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown, what = 'request body'): z.infer<T> {
  const r = schema.safeParse(input);
  if (!r.success) {
    const errors = fieldProblems(r.error);
    throw invalid(`invalid ${what}: ${errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join('; ')}`, errors);
  }
  return r.data;
}

/** ioredis refusing a command because Redis is away (the API's connection does not queue offline). */
function redisUnavailable(err: unknown): boolean {
  const e = err as { name?: unknown; message?: unknown };
  return e?.name === 'MaxRetriesPerRequestError' || /enableOfflineQueue|Connection is closed|ECONNREFUSED/.test(String(e?.message ?? ''));
}

/**
 * Maps every error to api.md's shape. ApiError carries its status; errors from other parts
 * may carry a numeric `status` (4xx) and a `code`; body-parser's errors carry `type`.
 */
export function errorHandler(log: { error(obj: object, msg: string): void }): ErrorRequestHandler {
  return (err: unknown, _req, res, _next) => {
    if (res.headersSent) {
      res.end();
      return;
    }
    if (err instanceof ApiError) {
      if (err.retryAfterSeconds !== undefined) res.set('retry-after', String(err.retryAfterSeconds));
      res.status(err.status).json({ error: err.message, code: err.code, errors: err.errors });
      return;
    }
    const e = err as {
      status?: unknown;
      statusCode?: unknown;
      type?: unknown;
      code?: unknown;
      message?: unknown;
      errors?: unknown;
      problems?: unknown;
    };
    if (e?.type === 'entity.too.large') {
      res.status(413).json({ error: 'request body too large', code: 'too_large', errors: [] });
      return;
    }
    if (e?.type === 'entity.parse.failed') {
      res.status(400).json({ error: `malformed request body: ${String(e.message)}`, code: 'malformed', errors: [] });
      return;
    }
    const status = typeof e?.status === 'number' ? e.status : typeof e?.statusCode === 'number' ? e.statusCode : 500;
    if (status >= 400 && status < 500) {
      res.status(status).json({
        error: String(e.message ?? 'request failed'),
        code: typeof e.code === 'string' ? e.code : 'error',
        errors: Array.isArray(e.errors) ? e.errors : Array.isArray(e.problems) ? e.problems : [],
      });
      return;
    }
    if (status === 503 || redisUnavailable(err)) {
      res.status(503).json({ error: `temporarily unavailable: ${String(e.message ?? 'a service is down')}`, code: 'unavailable', errors: [] });
      return;
    }
    log.error({ err }, 'request failed');
    res.status(500).json({ error: 'internal error (see the server log)', code: 'internal', errors: [] });
  };
}
