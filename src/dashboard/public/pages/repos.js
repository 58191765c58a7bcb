// Repositories: each with its latest builds and what each environment runs.
import { get, listOf, repoPath } from '../api.js';
import { h, fill, shortDigest, status, time, tags, table, errorBox } from '../dom.js';
import { loadEnvironments, buildCache, tagsOf, repoName, ACTIVE_ROLLOUT } from './common.js';

export function reposPage({ ctx, signal }) {
  const list = h('div', { class: 'repos' }, h('p', {}, 'Loading…'));
  const element = h('section', { 'aria-labelledby': 'page-title' },
    h('div', { class: 'page-head' },
      h('h1', { id: 'page-title' }, 'Repositories'),
      ctx.me && ['developer', 'deployer', 'admin'].includes(ctx.me.role) ? h('a', { class: 'button', href: '#/rules/new' }, 'Add repository') : null),
    list);
  const buildById = buildCache(signal);

  async function card(item) {
    const repo = repoName(item);
    // GET /api/repos answers {repo, config, …} per repository; fetch the config when a server does not.
    const config = item?.config ?? (item?.repository ? item : await get(`/api/repos/${repoPath(repo)}`, { signal }).catch(() => ({})));
    const [builds, envs] = await Promise.all([
      get(`/api/builds?repo=${encodeURIComponent(repo)}&limit=5`, { signal }).then((b) => listOf(b, 'builds')),
      loadEnvironments(repo, config, signal),
    ]);
    const envRows = await Promise.all(envs.map(async (env) => {
      const cur = env.current;
      const rolling = (env.history ?? []).find((d) => ACTIVE_ROLLOUT.has(d.status));
      return [
        h('a', { href: `#/repos/${repoPath(repo)}/environments/${encodeURIComponent(env.name)}` }, env.name),
        cur ? shortDigest(cur.digest) : h('span', { class: 'muted' }, 'nothing deployed'),
        cur ? tags(await tagsOf(cur, builds, buildById)) : '',
        cur ? time(cur.finishedAt ?? cur.startedAt) : '',
        cur ? cur.by : '',
        rolling ? h('span', {}, status(rolling.status), ` revision ${rolling.revision}`) : cur ? h('span', {}, `revision ${cur.revision}`) : '',
      ];
    }));
    const buildRows = builds.map((b) => [
      h('a', { href: `#/builds/${encodeURIComponent(b.id)}` }, b.id),
      h('code', {}, b.ref), status(b.status), tags(b.tags), shortDigest(b.digest), time(b.queuedAt),
    ]);
    return h('article', { class: 'card repo', 'aria-labelledby': `repo-${repo}` },
      h('div', { class: 'page-head' },
        h('h2', { id: `repo-${repo}` }, repo),
        h('span', { class: 'links' },
          h('a', { href: `#/repos/${repoPath(repo)}/rules` }, 'Rules'), ' · ',
          h('a', { href: `#/repos/${repoPath(repo)}/settings`, 'aria-label': `Settings of ${repo}` }, 'Settings'))),
      config.image ? h('p', { class: 'muted' }, 'Image ', h('code', {}, config.image)) : null,
      h('h3', {}, 'Environments'),
      table(`Environments of ${repo}`, ['Environment', 'Runs', 'Tags', 'Since', 'By', 'Revision'], envRows, 'No environments configured.'),
      h('h3', {}, 'Latest builds'),
      table(`Latest builds of ${repo}`, ['Build', 'Ref', 'Status', 'Tags', 'Digest', 'Queued'], buildRows, 'No builds yet.'));
  }

  return {
    title: 'Repositories',
    element,
    async refresh() {
      const repos = listOf(await get('/api/repos', { signal }), 'repos', 'repositories');
      if (!repos.length) {
        fill(list, h('p', {}, 'No repositories yet. ', h('a', { href: '#/rules/new' }, 'Add one'), ' with its rules, or run ', h('code', {}, 'slipway repo set owner/name --config slipway.yaml'), '.'));
        return;
      }
      const cards = await Promise.all(repos.map((r) => card(r).catch((err) => h('article', { class: 'card' }, h('h2', {}, repoName(r)), errorBox(err)))));
      fill(list, ...cards);
    },
  };
}
