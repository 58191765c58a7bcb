import { z } from 'zod';
import { BuildStatus } from '../../store/index.js';
import { planBuilds } from '../../webhooks/index.js';
import { mayAccess, principal, unscoped } from '../auth.js';
import { invalid, notFound, parseInput } from '../errors.js';
import { repoParam } from './repos.js';
import type { RouteModule } from './index.js';

const ListQuery = z.object({
  repo: z.string().regex(/^[^/\s]+\/[^/\s]+$/, 'must be owner/name').optional(),
  status: BuildStatus.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});

const ByHand = z.strictObject({
  /** refs/heads/x, refs/tags/x, or a bare branch name. */
  ref: z.string().trim().min(1),
  sha: z.string().regex(/^[0-9a-f]{40}$/, 'must be a full 40-hex commit sha').optional(),
  rule: z.string().min(1).optional(),
});

/** Builds: list, get, build by hand, cancel. */
export const buildRoutes: RouteModule = (router, { requireRole, builds, lanes, repos, deliveries, rules, compiled, audit, clock }) => {
  router.get('/api/builds', requireRole('viewer'), async (req, res) => {
    const q = parseInput(ListQuery, req.query, 'query');
    const who = principal(res);
    const status = q.status ? { status: q.status } : {};
    if (q.repo || unscoped(who)) {
      // A repository the token may not see has, as far as it can tell, no builds.
      const visible = !q.repo || mayAccess(who, q.repo);
      res.json({ builds: visible ? await builds.list({ limit: q.limit, ...(q.repo ? { repo: q.repo } : {}), ...status }) : [] });
      return;
    }
    // A scoped token: the newest builds of each repository it may see, merged.
    const mine = (await repos.list()).filter((r) => mayAccess(who, r.repo));
    const lists = await Promise.all(mine.map((r) => builds.list({ limit: q.limit, repo: r.repo, ...status })));
    const merged = lists.flat().sort((a, b) => (a.queuedAt < b.queuedAt ? 1 : a.queuedAt > b.queuedAt ? -1 : a.id < b.id ? 1 : -1));
    res.json({ builds: merged.slice(0, q.limit) });
  });

  router.get('/api/builds/:id', requireRole('viewer'), async (req, res) => {
    const found = await builds.get(req.params.id as string);
    if (!found || !mayAccess(principal(res), found.repo)) throw notFound(`no build ${req.params.id}`);
    res.json(found);
  });

  router.post('/api/repos/:owner/:name/builds', requireRole('developer'), async (req, res) => {
    const repo = repoParam(req.params);
    const input = parseInput(ByHand, req.body ?? {});
    const stored = mayAccess(principal(res), repo) ? await repos.get(repo) : null;
    if (!stored) throw notFound(`no repository ${repo}: store its config with PUT /api/repos/${repo}`);
    const ref = input.ref.startsWith('refs/') ? input.ref : `refs/heads/${input.ref}`;
    if (!rules.isValidGitRefName(ref)) throw invalid(`ref: not a valid git ref name: ${ref}`, [{ path: 'ref', message: 'not a valid git ref name' }]);
    const sha = input.sha ?? (await deliveries.headOf(stored.repo, ref));
    if (!sha) {
      const message = `required: no push of ${ref} seen yet, so pass the commit to build`;
      throw invalid(`sha: ${message}`, [{ path: 'sha', message }]);
    }
    const by = principal(res).name;
    const at = clock();
    const plan = planBuilds({ engine: rules, cache: compiled }, stored, { ref, sha }, { cloneUrl: stored.config.source?.url ?? null, deliveryId: null, trigger: 'manual', by, at }, { manual: true, ...(input.rule ? { rule: input.rule } : {}) });
    if (plan.builds.length === 0) {
      const why = plan.skipped.map((s) => `${s.rule}: ${s.reason}`).join('; ') || 'the config has no rules';
      throw invalid(`nothing to build for ${ref}: ${why}`, plan.skipped.map((s) => ({ path: input.rule ? 'rule' : 'ref', message: `${s.rule}: ${s.reason}` })));
    }
    const records = plan.builds;
    const { superseded } = await lanes.submit(records, plan.lane);
    await audit.append({ at: at.toISOString(), actor: by, action: 'build.create', repo: stored.repo, from: null, to: null, result: `${records.map((r) => r.id).join(',')} ${ref}@${sha.slice(0, 12)}` });
    res.status(202).json({ builds: records.map((r) => r.id), skipped: plan.skipped, warnings: plan.warnings, superseded });
  });

  router.post('/api/builds/:id/cancel', requireRole('developer'), async (req, res) => {
    const id = req.params.id as string;
    const by = principal(res).name;
    const found = await builds.get(id);
    if (!found || !mayAccess(principal(res), found.repo)) throw notFound(`no build ${id}`);
    const record = await lanes.cancel(id, by);
    await audit.append({ at: clock().toISOString(), actor: by, action: 'build.cancel', repo: record.repo, from: record.digest, to: null, result: record.status });
    res.status(202).json(record);
  });
};
