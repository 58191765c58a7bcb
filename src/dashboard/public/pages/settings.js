// A repository's operator settings: the image prefix its images must lie under and whether its
// webhook deliveries are signed with its own secret. Everyone who may see the repository reads
// them; admins change them (a new secret is shown once, to be pasted into GitHub's webhook).
import { api, get, hasRole, repoPath } from '../api.js';
import { h, fill, time, announce, confirmDialog, errorBox } from '../dom.js';

export function settingsPage({ params, ctx, signal }) {
  const repo = `${params.owner}/${params.name}`;
  const path = `/api/repos/${repoPath(repo)}/settings`;
  const out = h('div', {}, h('p', {}, 'Loading…'));
  const notice = h('div', { id: 'settings-notice', 'aria-live': 'polite' });
  const element = h('section', { 'aria-labelledby': 'page-title' },
    h('div', { class: 'page-head' }, h('h1', { id: 'page-title' }, `Settings of ${repo}`), h('a', { href: `#/repos/${repoPath(repo)}/rules` }, 'Rules')),
    notice, out);

  async function change(json, done) {
    try {
      const { body } = await api('PUT', path, { json });
      if (body.webhookSecretValue) {
        fill(notice, h('div', { class: 'notice', role: 'status' },
          h('p', {}, `${repo} now has its own webhook secret. Set it on the repository's GitHub webhook now, it is not shown again; until then its deliveries are refused:`),
          h('code', { id: 'webhook-secret-value' }, body.webhookSecretValue)));
      } else {
        fill(notice);
        announce(done);
      }
      await page.refresh();
    } catch (err) {
      fill(notice, errorBox(err));
    }
  }

  function adminForm(s) {
    const prefix = h('input', { id: 'image-prefix', name: 'image_prefix', value: s.imagePrefix, autocomplete: 'off', spellcheck: 'false' });
    const form = h('form', { class: 'settings', 'aria-labelledby': 'prefix-title' },
      h('h2', { id: 'prefix-title' }, 'Image prefix'),
      h('label', { for: 'image-prefix' }, 'Images of this repository must lie under'), prefix,
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'primary' }, 'Save prefix'),
        h('button', { type: 'button', onclick: () => change({ image_prefix: null }, 'Image prefix back to the default') }, 'Use the default')));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void change({ image_prefix: prefix.value.trim() }, 'Image prefix saved');
    });
    const generate = async () => {
      const ok = await confirmDialog({
        title: `Give ${repo} its own webhook secret?`,
        body: h('p', {}, 'Deliveries signed with the shared secret (or the current one) are refused from now on, until the new secret is set on GitHub.'),
        action: 'Generate secret',
      });
      if (ok) await change({ webhook_secret: 'generate' });
    };
    return [form,
      h('h2', {}, 'Webhook secret'),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: 'primary', onclick: generate }, s.webhookSecret === 'own' ? 'Rotate own secret' : 'Generate own secret'),
        s.webhookSecret === 'own' ? h('button', { type: 'button', onclick: () => change({ webhook_secret: null }, 'Back to the shared webhook secret') }, 'Use the shared secret') : null)];
  }

  const page = {
    title: `Settings of ${repo}`,
    element,
    async refresh() {
      const s = await get(path, { signal });
      fill(out,
        h('dl', { class: 'settings' },
          h('dt', {}, 'Image prefix'), h('dd', {}, h('code', { id: 'shown-prefix' }, s.imagePrefix), s.imagePrefix === s.defaultImagePrefix ? ' (the default)' : [' (mapped; the default is ', h('code', {}, s.defaultImagePrefix), ')']),
          h('dt', {}, 'Webhook secret'), h('dd', { id: 'shown-secret' }, s.webhookSecret === 'own' ? 'its own (the shared secret does not sign its deliveries)' : 'the shared SLIPWAY_WEBHOOK_SECRET'),
          s.updatedAt ? [h('dt', {}, 'Changed'), h('dd', {}, time(s.updatedAt), ` by ${s.updatedBy}`)] : null),
        hasRole(ctx.me, 'admin') ? adminForm(s) : h('p', { class: 'reason' }, `Settings are changed by admins; you are ${ctx.me.role}.`));
    },
  };
  return page;
}
