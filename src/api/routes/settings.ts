import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { RepoSettings } from '../../store/index.js';
import { checkAccess, principal } from '../auth.js';
import { imagePrefix } from '../claims.js';
import { notFound, parseInput } from '../errors.js';
import type { RouteContext } from '../deps.js';
import type { RouteModule } from './index.js';
import { repoParam } from './repos.js';

/** `host[:port]/path`, lowercase, as Docker names an image repository (no tag). */
const ImagePrefix = z
  .string()
  .max(255)
  .regex(/^[a-z0-9.-]+(:\d{1,5})?(\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)+$/, 'an image repository name such as registry.example.com/acme/app (lowercase, no tag)');

const SettingsChange = z.strictObject({
  /** null: back to the default `<registry>/<owner>/<name>`. */
  image_prefix: ImagePrefix.nullable().optional(),
  /** `generate`: a new random secret, answered once; a string of ≥ 20 characters: that one; null: the shared secret again. */
  webhook_secret: z.union([z.literal('generate'), z.string().min(20, 'at least 20 characters (or "generate")').max(256), z.null()]).optional(),
});

/** The settings as answered: never the secret itself. */
function view(repo: string, s: RepoSettings | null, registry: string) {
  const defaultImagePrefix = imagePrefix(registry, repo);
  return {
    repo,
    imagePrefix: s?.imagePrefix ?? defaultImagePrefix,
    defaultImagePrefix,
    webhookSecret: s?.webhookSecret ? 'own' : 'shared',
    updatedAt: s?.updatedAt ?? null,
    updatedBy: s?.updatedBy ?? null,
  };
}

/** The image prefix a repository's images must lie under (the admin's mapping, else the default). */
export async function imagePrefixOf(ctx: Pick<RouteContext, 'settings' | 'registry'>, repo: string): Promise<string> {
  return (await ctx.settings.get(repo))?.imagePrefix ?? imagePrefix(ctx.registry, repo);
}

/**
 * A repository's operator settings, apart from the config its team edits: the image prefix its
 * images must lie under and its own webhook secret. Anyone who may see the repository reads them
 * (never the secret); only an admin changes them.
 */
export const settingsRoutes: RouteModule = (router, { requireRole, settings, audit, clock, registry }) => {
  router.get('/api/repos/:owner/:name/settings', requireRole('viewer'), async (req, res) => {
    const repo = repoParam(req.params);
    checkAccess(res, repo, () => notFound(`no repository ${repo} that this token may see`));
    res.json(view(repo, await settings.get(repo), registry));
  });

  router.put('/api/repos/:owner/:name/settings', requireRole('admin'), async (req, res) => {
    const repo = repoParam(req.params);
    const change = parseInput(SettingsChange, req.body);
    const before = await settings.get(repo);
    const at = clock();
    const by = principal(res).name;
    const generated = change.webhook_secret === 'generate' ? randomBytes(32).toString('hex') : undefined;
    const next: RepoSettings = {
      imagePrefix: change.image_prefix === undefined ? (before?.imagePrefix ?? null) : change.image_prefix,
      webhookSecret: change.webhook_secret === undefined ? (before?.webhookSecret ?? null) : (generated ?? change.webhook_secret),
      updatedAt: at.toISOString(),
      updatedBy: by,
    };
    if (next.imagePrefix === imagePrefix(registry, repo)) next.imagePrefix = null;
    await settings.put(repo, next);
    const was = view(repo, before, registry);
    const now = view(repo, next, registry);
    const changes = [
      ...(was.imagePrefix !== now.imagePrefix ? [`image_prefix: ${was.imagePrefix} → ${now.imagePrefix}`] : []),
      ...(change.webhook_secret !== undefined ? [`webhook_secret: ${was.webhookSecret} → ${now.webhookSecret}${now.webhookSecret === 'own' ? ' (new)' : ''}`] : []),
    ];
    await audit.append({ at: at.toISOString(), actor: by, action: 'repo.settings', repo, from: null, to: null, result: changes.length ? 'stored' : 'unchanged', changes });
    res.json({ ...now, ...(generated ? { webhookSecretValue: generated } : {}) });
  });
};
