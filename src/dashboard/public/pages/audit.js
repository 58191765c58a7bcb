// The audit log: who did what, when, from which digest to which, with what result.
import { get, listOf, hasRole } from '../api.js';
import { h, fill, shortDigest, time, table } from '../dom.js';

export function auditPage({ ctx, signal }) {
  const out = h('div', {}, h('p', {}, 'Loading…'));
  const element = h('section', {}, h('h1', {}, 'Audit log'), out);
  return {
    title: 'Audit log',
    element,
    async refresh() {
      if (!hasRole(ctx.me, 'deployer')) {
        fill(out, h('p', { class: 'reason' }, `The audit log needs the deployer role; you are ${ctx.me.role}.`));
        return;
      }
      const entries = listOf(await get('/api/audit?limit=200', { signal }), 'entries', 'audit');
      fill(out, table('Audit entries, newest first', ['When', 'Who', 'Action', 'Repository', 'Environment', 'From', 'To', 'Result', 'Changes'],
        entries.map((e) => [time(e.at), e.actor, e.action, e.repo ?? '—', e.environment ?? '—', shortDigest(e.from), shortDigest(e.to), e.result,
          e.changes?.length ? h('ul', { class: 'changes' }, e.changes.map((c) => h('li', {}, h('code', {}, c)))) : '—']),
        'Nothing recorded yet.'));
    },
    showError(err) { fill(out, h('p', { class: 'error', role: 'alert' }, err.message)); },
  };
}
