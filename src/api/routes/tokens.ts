import { z } from 'zod';
import { Role, TokenNameTaken } from '../../store/index.js';
import { principal } from '../auth.js';
import { conflict, parseInput } from '../errors.js';
import type { RouteModule } from './index.js';

const NewToken = z.strictObject({
  name: z.string().trim().min(1).max(100).regex(/^[A-Za-z0-9][A-Za-z0-9._@:-]*$/, 'letters, digits and . _ @ : - only'),
  role: Role,
});

/** Tokens: create (admin; the token is shown once) and who-am-I. */
export const tokenRoutes: RouteModule = (router, { requireRole, tokens, audit, clock }) => {
  router.post('/api/tokens', requireRole('admin'), async (req, res) => {
    const input = parseInput(NewToken, req.body);
    const by = principal(res).name;
    if (input.name === 'admin') throw conflict('the name "admin" is reserved for SLIPWAY_ADMIN_TOKEN');
    const at = clock();
    try {
      const { token, info } = await tokens.create(input.name, input.role, by, at);
      await audit.append({ at: at.toISOString(), actor: by, action: 'token.create', repo: null, from: null, to: null, result: `${info.name} (${info.role})` });
      res.status(201).json({ token, name: info.name, role: info.role });
    } catch (err) {
      if (err instanceof TokenNameTaken) throw conflict(err.message);
      throw err;
    }
  });

  router.get('/api/me', requireRole('viewer'), (_req, res) => {
    res.json(principal(res));
  });
};
