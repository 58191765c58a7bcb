// All builds, newest first, filterable by repository and status.
import { get, listOf } from '../api.js';
import { h, fill, shortDigest, shortSha, status, time, tags, table } from '../dom.js';

const STATUSES = ['', 'queued', 'running', 'succeeded', 'failed', 'cancelled', 'superseded'];

export function buildsPage({ signal }) {
  const params = new URLSearchParams(location.hash.split('?')[1] ?? '');
  const repo = h('input', { id: 'f-repo', name: 'repo', placeholder: 'owner/name', value: params.get('repo') ?? '' });
  const st = h('select', { id: 'f-status', name: 'status' }, STATUSES.map((s) => h('option', { value: s, selected: s === (params.get('status') ?? '') }, s || 'any')));
  const out = h('div', {});
  const form = h('form', { class: 'filters', onsubmit: (e) => {
    e.preventDefault();
    const q = new URLSearchParams();
    if (repo.value.trim()) q.set('repo', repo.value.trim());
    if (st.value) q.set('status', st.value);
    location.hash = `#/builds${q.size ? `?${q}` : ''}`;
  } },
  h('label', { for: 'f-repo' }, 'Repository'), repo,
  h('label', { for: 'f-status' }, 'Status'), st,
  h('button', { type: 'submit' }, 'Filter'));
  const element = h('section', {}, h('h1', {}, 'Builds'), form, out);
  return {
    title: 'Builds',
    element,
    async refresh() {
      const q = new URLSearchParams({ limit: '100' });
      if (params.get('repo')) q.set('repo', params.get('repo'));
      if (params.get('status')) q.set('status', params.get('status'));
      const builds = listOf(await get(`/api/builds?${q}`, { signal }), 'builds');
      fill(out, table('Builds', ['Build', 'Repository', 'Ref', 'Commit', 'Status', 'Tags', 'Digest', 'Queued'],
        builds.map((b) => [
          h('a', { href: `#/builds/${encodeURIComponent(b.id)}` }, b.id), b.repo, h('code', {}, b.ref), shortSha(b.sha),
          status(b.status), tags(b.tags), shortDigest(b.digest), time(b.queuedAt),
        ]), 'No builds match.'));
    },
  };
}
