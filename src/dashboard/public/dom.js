// A tiny element builder: every value lands as text (never as HTML), so build logs, refs and
// commit messages cannot inject markup.

/**
 * h('button', {class: 'x', onclick: fn, disabled: true}, 'Promote')
 * Attributes: `on*` are listeners, `true`/`false` toggle boolean attributes, null/undefined are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'value') el.value = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

/** Replaces an element's children; null, undefined and false are left out (replaceChildren would print them). */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** `sha256:0123456789ab…` → `sha256:0123456789ab` (12 hex digits), full value in the title. */
export function shortDigest(digest) {
  if (!digest) return h('span', { class: 'muted' }, 'none');
  const [algo, hex = ''] = String(digest).split(':');
  return h('code', { title: digest, class: 'digest' }, `${algo}:${hex.slice(0, 12)}`);
}

export function shortSha(sha) {
  return sha ? h('code', { title: sha }, String(sha).slice(0, 7)) : h('span', { class: 'muted' }, 'none');
}

/** Status as a word plus a shape, so it reads without colour; colour only reinforces it. */
const STATUS_SYMBOL = {
  queued: '○', pending: '○', running: '◐', succeeded: '●', failed: '✕', cancelled: '⊘',
  superseded: '↷', rolled_back: '↶',
};
export function status(value) {
  const word = String(value ?? 'unknown');
  return h('span', { class: `status status-${word}` },
    h('span', { 'aria-hidden': 'true' }, STATUS_SYMBOL[word] ?? '?'), ' ', word.replace('_', ' '));
}

export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const d = new Date(iso);
  return h('time', { datetime: iso, title: d.toISOString() }, `${d.toLocaleString()} (${ago(d)})`);
}

export function ago(date) {
  const s = Math.max(0, Math.round((Date.now() - date.getTime()) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function duration(fromIso, toIso) {
  if (!fromIso) return '—';
  const ms = (toIso ? new Date(toIso) : new Date()).getTime() - new Date(fromIso).getTime();
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${s % 60}s`;
}

export function tags(list) {
  if (!list?.length) return h('span', { class: 'muted' }, 'no tags');
  return h('span', { class: 'tags' }, list.map((t) => h('code', { class: 'tag' }, t)));
}

export function table(caption, headers, rows, empty = 'Nothing yet.') {
  if (!rows.length) return h('p', { class: 'muted' }, empty);
  return h('table', {},
    h('caption', { class: caption.visible ? '' : 'visually-hidden' }, caption.text ?? caption),
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c))))));
}

/** A problem a person can act on, in words. */
export function errorBox(err) {
  const list = err?.errors?.length
    ? h('ul', {}, err.errors.map((e) => h('li', {}, e.path ? h('code', {}, e.path) : null, e.path ? ': ' : '', e.message)))
    : null;
  return h('div', { class: 'error', role: 'alert' }, h('strong', {}, 'Error: '), err?.message ?? String(err), list);
}

export function announce(text) {
  const el = document.getElementById('announcer');
  if (!el) return;
  el.textContent = '';
  // A fresh text node is announced even when the words repeat.
  setTimeout(() => { el.textContent = text; }, 50);
}

/**
 * A modal confirmation with a named action button and "Cancel"; resolves true only when the
 * person confirms. The dialog lives outside the page so live refreshes never tear it down.
 */
export function confirmDialog({ title, body, action }) {
  return new Promise((resolve) => {
    const confirmBtn = h('button', { type: 'button', class: 'primary', value: 'confirm' }, action);
    const cancelBtn = h('button', { type: 'button', value: 'cancel' }, 'Cancel');
    const heading = h('h2', { id: 'dialog-title' }, title);
    const dialog = h('dialog', { 'aria-labelledby': 'dialog-title', 'aria-describedby': 'dialog-body' },
      heading, h('div', { id: 'dialog-body' }, body), h('div', { class: 'actions' }, cancelBtn, confirmBtn));
    const close = (ok) => { dialog.close(); dialog.remove(); resolve(ok); };
    confirmBtn.addEventListener('click', () => close(true));
    cancelBtn.addEventListener('click', () => close(false));
    dialog.addEventListener('cancel', (e) => { e.preventDefault(); close(false); });
    document.body.append(dialog);
    dialog.showModal();
    cancelBtn.focus();
  });
}
