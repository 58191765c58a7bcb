import { z } from 'zod';
import type { Request, Response } from 'express';
import { checkAccess, mayAccess, principal, unscoped } from '../auth.js';
import { notFound, parseInput } from '../errors.js';
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
  /** The repository of the path, when the caller may act on it (else 404, as for one that is not there). */
  const repoOf = (req: Request, res: Response) => {
    const repo = repoParam(req.params);
    checkAccess(res, repo, () => notFound(`no repository ${repo}`));
    return repo;
  };

  router.get(base, requireRole('viewer'), async (req, res) => {
    res.json({ environments: await deployer.environments(repoOf(req, res)) });
  });

  router.get(`${base}/:env`, requireRole('viewer'), async (req, res) => {
    res.json(await deployer.environment(repoOf(req, res), envParam(req.params)));
  });

  router.post(`${base}/:env/deploy`, requireRole('developer'), async (req, res) => {
    const body = parseInput(DeployBody, req.body ?? {});
    const record = await deployer.deploy(repoOf(req, res), envParam(req.params), body, principal(res));
    res.status(202).json(record);
  });

  router.post(`${base}/:env/promote`, requireRole('viewer'), async (req, res) => {
    const { started, deployment } = await deployer.promote(repoOf(req, res), envParam(req.params), principal(res));
    res.status(started ? 202 : 200).json(deployment);
  });

  router.post(`${base}/:env/rollback`, requireRole('viewer'), async (req, res) => {
    const body = parseInput(RollbackBody, req.body ?? {});
    const record = await deployer.rollback(repoOf(req, res), envParam(req.params), body, principal(res));
    res.status(202).json(record);
  });

  router.delete(`${base}/:env`, requireRole('admin'), async (req, res) => {
    res.json(await deployer.remove(repoOf(req, res), envParam(req.params), principal(res)));
  });

  router.get('/api/deployments/:id', requireRole('viewer'), async (req, res) => {
    const id = String(req.params.id);
    const found = await deployer.deployment(id).catch((err: unknown) => {
      throw (err as { status?: number }).status === 404 ? notFound(`no deployment ${id}`) : err;
    });
    if (!mayAccess(principal(res), found.repo)) throw notFound(`no deployment ${id}`);
    res.json(found);
  });

  router.get('/api/audit', requireRole('deployer'), async (req, res) => {
    const q = parseInput(AuditQuery, req.query, 'query');
    const who = principal(res);
    const entries = await audit.list(unscoped(who) ? q.limit : 1000);
    // A scoped token reads its repositories' entries; entries of no repository (tokens) are for unscoped ones.
    const visible = unscoped(who) ? entries : entries.filter((e) => e.repo !== null && mayAccess(who, e.repo));
    res.json({ entries: visible.slice(0, q.limit) });
  });
};
