import { RulesError, type RepoConfig } from '../../rules/index.js';
import type { RulesEngine } from '../../webhooks/index.js';
import { sourceProblem } from '../../auth/index.js';
import { ClaimsTaken, roleAtLeast } from '../../store/index.js';
import { checkAccess, mayAccess, principal } from '../auth.js';
import { claimProblems, claimsOf, underPrefix } from '../claims.js';
import { configChanges, describeChange, protectedChanges } from '../config-changes.js';
import { ApiError, badRequest, invalid, notFound } from '../errors.js';
import type { RouteModule } from './index.js';
import { imagePrefixOf } from './settings.js';

const REPO = /^[A-Za-z0-9._-]+$/;

/** `owner/name` from the path; 400 when it is not a GitHub repository name. */
export function repoParam(params: Record<string, unknown>): string {
  const owner = String(params.owner ?? '');
  const name = String(params.name ?? '');
  if (!REPO.test(owner) || !REPO.test(name)) throw badRequest(`not a repository name: ${owner}/${name} (expected owner/name)`);
  return `${owner}/${name}`;
}

/** A config document from a JSON or YAML body; a YAML syntax error is a malformed body (400). */
function documentOf(body: unknown, rules: RulesEngine): unknown {
  if (typeof body !== 'string') return body;
  try {
    return rules.parseText(body);
  } catch (err) {
    if (err instanceof RulesError) throw badRequest(err.message, err.problems);
    throw err;
  }
}

/** Repositories and their config documents (validated whole by src/rules). */
export const repoRoutes: RouteModule = (router, ctx) => {
  const { requireRole, repos, settings, rules, audit, clock, allowSharedBuilds, sources } = ctx;
  router.put('/api/repos/:owner/:name', requireRole('developer'), async (req, res) => {
    const repo = repoParam(req.params);
    checkAccess(res, repo, () => notFound(`no repository ${repo} that this token may act on`));
    const doc = documentOf(req.body, rules);
    if (doc === undefined || doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
      throw badRequest('send the config document as a JSON object or YAML (Content-Type: application/json or application/yaml)');
    }
    const config: RepoConfig = rules.normalise(doc);
    if (config.repository.toLowerCase() !== repo.toLowerCase()) {
      const message = `must be "${repo}", the repository of this URL`;
      throw invalid(`repository: ${message}`, [{ path: 'repository', message }]);
    }
    const sourceRefused = config.source?.url ? sourceProblem(sources, config.source.url, config.repository) : null;
    if (sourceRefused) throw invalid(`source.url: ${sourceRefused}`, [{ path: 'source.url', message: sourceRefused }]);
    if (config.builder.isolation === 'shared' && !allowSharedBuilds) {
      const message = 'shared is not allowed on this slipway: builds run on dedicated engines (the operator allows shared ones with SLIPWAY_ALLOW_SHARED_BUILDS=true)';
      throw invalid(`builder.isolation: ${message}`, [{ path: 'builder.isolation', message }]);
    }
    const who = principal(res);
    const by = who.name;
    const at = clock();
    const before = await repos.get(repo);
    const previous = before?.config ?? null;
    const changes = configChanges(previous, config);
    // No team writes over another's images: below admin, a new image must lie under this repository's prefix.
    const prefix = await imagePrefixOf(ctx, config.repository);
    if (who.role !== 'admin' && config.image !== previous?.image && !underPrefix(config.image, prefix)) {
      const message = `must be ${prefix} or under it (the prefix this slipway maps ${config.repository} to); an admin may map another (PUT /api/repos/${config.repository}/settings)`;
      throw new ApiError(403, `image: ${message}`, 'forbidden', [{ path: 'image', message }]);
    }
    if (!roleAtLeast(who.role, 'deployer')) {
      const refused = protectedChanges(previous, config, changes);
      if (refused.length > 0) {
        throw new ApiError(403, `role too low: ${refused.map((r) => `${r.path}: ${r.message}`).join('; ')}; token "${by}" is ${who.role}`, 'forbidden', refused);
      }
    }
    // Service names and host ports are checked and taken in the same step as the write, so two
    // configs racing for one port cannot both be stored.
    const claims = claimsOf(config);
    const { stored } = await repos.put(config.repository, config, by, at, claims).catch((err: unknown) => {
      if (!(err instanceof ClaimsTaken)) throw err;
      const held = claimProblems(claims, err.taken);
      throw new ApiError(409, held.map((h) => `${h.path}: ${h.message}`).join('; '), 'conflict', held);
    });
    await audit.append({
      at: at.toISOString(),
      actor: by,
      action: before ? 'repo.update' : 'repo.create',
      repo: stored.repo,
      from: before?.version ?? null,
      to: stored.version,
      result: 'stored',
      changes: changes.slice(0, 200).map(describeChange),
    });
    res.json(stored.config);
  });

  router.get('/api/repos', requireRole('viewer'), async (_req, res) => {
    const who = principal(res);
    const all = (await repos.list()).filter((r) => mayAccess(who, r.repo));
    res.json({ repos: all.map((r) => ({ repo: r.repo, config: r.config, version: r.version, updatedAt: r.updatedAt, updatedBy: r.updatedBy })) });
  });

  router.get('/api/repos/:owner/:name', requireRole('viewer'), async (req, res) => {
    const repo = repoParam(req.params);
    checkAccess(res, repo, () => notFound(`no repository ${repo}: store its config with PUT /api/repos/${repo}`));
    const stored = await repos.get(repo);
    if (!stored) throw notFound(`no repository ${repo}: store its config with PUT /api/repos/${repo}`);
    res.json(stored.config);
  });

  router.delete('/api/repos/:owner/:name', requireRole('admin'), async (req, res) => {
    const repo = repoParam(req.params);
    const before = await repos.get(repo);
    if (!before) throw notFound(`no repository ${repo}`);
    if (!(await repos.delete(repo))) throw new ApiError(404, `no repository ${repo}`, 'not_found');
    await settings.delete(repo);
    const at = clock();
    await audit.append({ at: at.toISOString(), actor: principal(res).name, action: 'repo.delete', repo: before.repo, from: before.version, to: null, result: 'deleted' });
    res.status(204).end();
  });
};
