import { z } from 'zod';
import { repoGlobProblem } from '../../auth/index.js';
import { Role, TokenNameTaken, type TokenInfo } from '../../store/index.js';
import { principal } from '../auth.js';
import { conflict, notFound, parseInput } from '../errors.js';
import type { RouteModule } from './index.js';

const NAME = z.string().trim().min(1).max(100).regex(/^[A-Za-z0-9][A-Za-z0-9._@:-]*$/, 'letters, digits and . _ @ : - only');

/** `30d`, `12h`, `90m`: how long a new token lives. */
const Lifetime = z
  .string()
  .regex(/^[1-9]\d{0,4}[mhd]$/, 'a whole number of minutes, hours or days: 90m, 12h, 30d')
  .transform((v) => Number(v.slice(0, -1)) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[v.slice(-1) as 'm' | 'h' | 'd']);

const NewToken = z.strictObject({
  name: NAME,
  role: Role,
  /** Repository globs; default every repository. Admin tokens always act on every repository. */
  repos: z
    .array(z.string().superRefine((g, ctx) => {
      const problem = repoGlobProblem(g);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }))
    .min(1)
    .max(100)
    .optional(),
  expires_in: Lifetime.optional(),
});

/** A token as listed: its record and whether it still works, never the secret. */
function listed(info: TokenInfo, now: Date) {
  return { ...info, expired: info.expiresAt !== null && Date.parse(info.expiresAt) <= now.getTime() };
}

/** Tokens: create (admin; shown once), list and revoke (admin), and who-am-I. */
export const tokenRoutes: RouteModule = (router, { requireRole, tokens, audit, clock }) => {
  router.post('/api/tokens', requireRole('admin'), async (req, res) => {
    const input = parseInput(NewToken, req.body);
    const by = principal(res).name;
    if (input.name === 'admin') throw conflict('the name "admin" is reserved for SLIPWAY_ADMIN_TOKEN');
    const at = clock();
    const repos = input.role === 'admin' ? ['*'] : (input.repos ?? ['*']);
    const expiresAt = input.expires_in ? new Date(at.getTime() + input.expires_in) : null;
    try {
      const { token, info } = await tokens.create(input.name, { role: input.role, repos, expiresAt }, by, at);
      const scope = `${info.role} on ${info.repos.join(', ')}${info.expiresAt ? ` until ${info.expiresAt}` : ''}`;
      await audit.append({ at: at.toISOString(), actor: by, action: 'token.create', repo: null, from: null, to: null, result: `${info.name} (${scope})` });
      res.status(201).json({ token, ...info });
    } catch (err) {
      if (err instanceof TokenNameTaken) throw conflict(err.message);
      throw err;
    }
  });

  router.get('/api/tokens', requireRole('admin'), async (_req, res) => {
    const now = clock();
    res.json({ tokens: (await tokens.list()).map((t) => listed(t, now)) });
  });

  router.delete('/api/tokens/:name', requireRole('admin'), async (req, res) => {
    const name = parseInput(NAME, req.params.name, 'token name');
    const revoked = await tokens.revoke(name);
    if (!revoked) throw notFound(`no token named ${name}`);
    const at = clock();
    await audit.append({ at: at.toISOString(), actor: principal(res).name, action: 'token.revoke', repo: null, from: null, to: null, result: `${revoked.name} (${revoked.role})` });
    res.status(204).end();
  });

  router.get('/api/me', requireRole('viewer'), (_req, res) => {
    res.json(principal(res));
  });
};
