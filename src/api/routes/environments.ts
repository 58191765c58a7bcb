import { z } from 'zod';
import { principal } from '../auth.js';
import { parseInput } from '../errors.js';
import { repoParam } from './repos.js';
import type { RouteModule } from './index.js';

const DeployBody = z.strictObject({
  build: z.string().min(1).optional(),
  digest: z.string().min(1).optional(),
});
const RollbackBody = z.strictObject({ revision: z.number().int().positive().optional() });
const AuditQuery = z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) });
const ENV = /^[a-z0-9][a-z0-9_-]{0,62}$/;

function envParam(params: Record<string, unknown>): string {
  const env = String(params.env ?? '');
  if (!ENV.test(env)) throw Object.assign(new Error(`not an environment name: ${env}`), { status: 400, code: 'bad_request' });
  return env;
}

/**
 * Environments, rollouts and the audit log (api.md): reading is open to viewers; deploy needs developer,
 * and deploy, promote and rollback of a protected environment need deployer (checked by the Deployer,
 * which knows which environments are protected).
 */
export const environmentRoutes: RouteModule = (router, { requireRole, deployer, audit }) => {
  const base = '/api/repos/:owner/:name/environments';

  router.get(base, requireRole('viewer'), async (req, res) => {
    res.json({ environments: await deployer.environments(repoParam(req.params)) });
  });

  router.get(`${base}/:env`, requireRole('viewer'), async (req, res) => {
    res.json(await deployer.environment(repoParam(req.params), envParam(req.params)));
  });

  router.post(`${base}/:env/deploy`, requireRole('developer'), async (req, res) => {
    const body = parseInput(DeployBody, req.body ?? {});
    const record = await deployer.deploy(repoParam(req.params), envParam(req.params), body, principal(res));
    res.status(202).json(record);
  });

  router.post(`${base}/:env/promote`, requireRole('viewer'), async (req, res) => {
    const { started, deployment } = await deployer.promote(repoParam(req.params), envParam(req.params), principal(res));
    res.status(started ? 202 : 200).json(deployment);
  });

  router.post(`${base}/:env/rollback`, requireRole('viewer'), async (req, res) => {
    const body = parseInput(RollbackBody, req.body ?? {});
    const record = await deployer.rollback(repoParam(req.params), envParam(req.params), body, principal(res));
    res.status(202).json(record);
  });

  router.get('/api/deployments/:id', requireRole('viewer'), async (req, res) => {
    res.json(await deployer.deployment(String(req.params.id)));
  });

  router.get('/api/audit', requireRole('deployer'), async (req, res) => {
    const q = parseInput(AuditQuery, req.query, 'query');
    res.json({ entries: await audit.list(q.limit) });
  });
};
