import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { Router, type NextFunction, type Request, type Response } from 'express';

/**
 * The web dashboard: static ES modules and CSS, no build step. It is a client of the HTTP API
 * (../shared/spec/api.md) like the CLI, so it holds no server-side state and needs no
 * collaborators. Mount it at `/` after the API routes: it answers `GET /` and `/ui/**` only.
 */
export interface DashboardOptions {
  /** Browser cache lifetime of the assets in seconds; 0 (default) means revalidate every time. */
  maxAgeSeconds?: number;
}

const PUBLIC_DIR = join(dirname(fileURLToPath(import.meta.url)), 'public');

/** The browser build of `yaml` (plain ES modules) lets the rules editor place problems on lines. */
function yamlBrowserDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('yaml/package.json')), 'browser');
}

// The dashboard renders every value as text and loads nothing from elsewhere: a strict policy
// makes that a guarantee rather than a habit.
const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

export function createDashboard(options: DashboardOptions = {}): Router {
  const router = Router();
  const statics = { maxAge: (options.maxAgeSeconds ?? 0) * 1000, index: false };

  const secure = (_req: Request, res: Response, next: NextFunction) => {
    res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    next();
  };
  router.get(['/', '/index.html'], secure, (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.sendFile(join(PUBLIC_DIR, 'index.html'));
  });
  router.use('/ui/vendor/yaml', secure, express.static(yamlBrowserDir(), statics));
  router.use('/ui', secure, express.static(PUBLIC_DIR, statics));
  return router;
}
