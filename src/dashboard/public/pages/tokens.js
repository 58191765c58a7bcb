// API tokens (admin): who may do what on which repositories, until when; create one (shown once) or revoke one.
import { api, get, listOf, hasRole, ROLES } from '../api.js';
import { h, fill, time, table, announce, confirmDialog, errorBox } from '../dom.js';

export function tokensPage({ ctx, signal }) {
  const out = h('div', {}, h('p', {}, 'Loading…'));
  const created = h('div', { id: 'token-created', 'aria-live': 'polite' });
  const form = newTokenForm(created, () => page.refresh());
  const element = h('section', {}, h('h1', {}, 'API tokens'), created, out);
  const page = {
    title: 'API tokens',
    element,
    async refresh() {
      if (!hasRole(ctx.me, 'admin')) {
        fill(out, h('p', { class: 'reason' }, `Tokens are managed by admins; you are ${ctx.me.role}.`));
        return;
      }
      const tokens = listOf(await get('/api/tokens', { signal }), 'tokens', 'tokens');
      fill(out,
        table('Tokens', ['Name', 'Role', 'Repositories', 'Expires', 'Created', ''],
          tokens.map((t) => [t.name, t.role, t.repos.join(', '), t.expiresAt ? [time(t.expiresAt), t.expired ? ' (expired)' : ''] : 'never',
            [time(t.createdAt), ` by ${t.createdBy}`],
            h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke ${t.name}`, onclick: () => revoke(t.name) }, 'Revoke')]),
          'No tokens yet.'),
        form);
    },
    showError(err) { fill(out, h('p', { class: 'error', role: 'alert' }, err.message)); },
  };

  async function revoke(name) {
    const ok = await confirmDialog({ title: `Revoke ${name}?`, body: h('p', {}, 'Every request with this token is refused from now on.'), action: 'Revoke' });
    if (!ok) return;
    try {
      await api('DELETE', `/api/tokens/${encodeURIComponent(name)}`);
      announce(`Revoked ${name}`);
      await page.refresh();
    } catch (err) {
      fill(created, errorBox(err));
    }
  }
  return page;
}

function newTokenForm(created, refreshed) {
  const name = h('input', { id: 'token-name', name: 'name', required: true, autocomplete: 'off' });
  const role = h('select', { id: 'token-role', name: 'role' }, ROLES.map((r) => h('option', { value: r }, r)));
  const repos = h('input', { id: 'token-repos', name: 'repos', placeholder: 'acme/*, tools/cli (empty: all)' });
  const expires = h('input', { id: 'token-expires', name: 'expires', placeholder: '30d, 12h, 90m (empty: never)' });
  const form = h('form', { class: 'new-token', 'aria-labelledby': 'new-token-title' },
    h('h2', { id: 'new-token-title' }, 'New token'),
    h('label', { for: 'token-name' }, 'Name'), name,
    h('label', { for: 'token-role' }, 'Role'), role,
    h('label', { for: 'token-repos' }, 'Repositories'), repos,
    h('label', { for: 'token-expires' }, 'Expires in'), expires,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create token')));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const json = { name: name.value.trim(), role: role.value };
    const globs = repos.value.split(',').map((r) => r.trim()).filter(Boolean);
    if (globs.length) json.repos = globs;
    if (expires.value.trim()) json.expires_in = expires.value.trim();
    try {
      const { body } = await api('POST', '/api/tokens', { json });
      fill(created, h('div', { class: 'notice', role: 'status' },
        h('p', {}, `Token ${body.name} (${body.role} on ${body.repos.join(', ')}) — copy it now, it is not shown again:`),
        h('code', { id: 'new-token-value' }, body.token)));
      form.reset();
      await refreshed();
    } catch (err) {
      fill(created, errorBox(err));
    }
  });
  return form;
}
