// The rules editor: the repository's config as YAML, problems shown at their lines, and a live
// preview of what a ref would build (POST /api/rules/preview) while typing.
import { api, get, hasRole, repoPath } from '../api.js';
import { h, fill, tags, table, errorBox, announce } from '../dom.js';
import { lineForPath, syntaxProblems, parseConfig } from './places.js';
import { stringify } from '/ui/vendor/yaml/index.js';

const TEMPLATE = `repository: acme/web
image: 127.0.0.1:5000/acme/web
rules:
  - name: edge
    source: branch
    match: main
    tags: [edge, "{sourceref}-{sha:7}"]
  - name: releases
    source: tag
    semver: ">=1.0.0"
    tags: ["{version}", "{major}.{minor}", latest]
`;

export function rulesPage({ params, ctx, signal }) {
  const existing = params.owner ? `${params.owner}/${params.name}` : null;
  const canSave = hasRole(ctx.me, 'developer');
  const editor = h('textarea', { id: 'config', name: 'config', spellcheck: 'false', rows: '24', wrap: 'off', 'aria-describedby': 'problems-summary', 'aria-label': 'Configuration (YAML)' });
  const gutter = h('pre', { class: 'gutter', 'aria-hidden': 'true' });
  const problemsSummary = h('p', { id: 'problems-summary', 'aria-live': 'polite' });
  const problemsList = h('ol', { class: 'problems', 'aria-label': 'Problems' });
  const ref = h('input', { id: 'preview-ref', name: 'ref', value: 'refs/heads/main', spellcheck: 'false' });
  const sha = h('input', { id: 'preview-sha', name: 'sha', placeholder: 'forty zeros', spellcheck: 'false' });
  const changed = h('input', { id: 'preview-changed', name: 'changed', placeholder: 'src/a.ts docs/b.md', spellcheck: 'false' });
  const preview = h('div', { id: 'preview', 'aria-live': 'polite', 'aria-busy': 'false' });
  const saveState = h('div', { 'aria-live': 'polite' });
  const saveBtn = h('button', { type: 'submit', class: 'primary', disabled: !canSave }, 'Save');
  const element = h('section', {},
    h('h1', {}, existing ? ['Rules of ', h('code', {}, existing)] : 'Add a repository'),
    h('div', { class: 'rules-layout' },
      h('form', { class: 'card', onsubmit: (e) => { e.preventDefault(); save(); } },
        h('label', { for: 'config' }, 'Configuration (YAML or JSON; see the rules reference)'),
        h('div', { class: 'editor' }, gutter, editor),
        problemsSummary, problemsList,
        h('div', { class: 'actions' }, saveBtn,
          canSave ? null : h('p', { class: 'reason' }, `Saving needs the developer role; you are ${ctx.me.role}.`)),
        saveState),
      h('div', { class: 'card' },
        h('h2', {}, 'Preview'),
        h('p', { class: 'muted' }, 'What a push of this ref would build with the text on the left, saved or not.'),
        h('div', { class: 'preview-inputs' },
          h('label', { for: 'preview-ref' }, 'Ref'), ref,
          h('label', { for: 'preview-sha' }, 'Commit'), sha,
          h('label', { for: 'preview-changed' }, 'Changed files'), changed),
        preview)));

  let problemLines = new Set();
  function renderGutter() {
    const count = editor.value.split('\n').length;
    const lines = [];
    for (let i = 1; i <= count; i++) {
      lines.push(problemLines.has(i) ? h('span', { class: 'bad' }, `! ${i}`) : String(i), '\n');
    }
    fill(gutter, lines);
    gutter.scrollTop = editor.scrollTop;
  }
  editor.addEventListener('scroll', () => { gutter.scrollTop = editor.scrollTop; });

  function goToLine(line) {
    const starts = editor.value.split('\n');
    let offset = 0;
    for (let i = 0; i < line - 1 && i < starts.length; i++) offset += starts[i].length + 1;
    editor.focus();
    editor.setSelectionRange(offset, offset + (starts[line - 1]?.length ?? 0));
  }

  /** Shows problems, each with its line; `null` clears them. */
  function showProblems(problems) {
    const text = editor.value;
    const placed = (problems ?? []).map((p) => ({ ...p, line: p.line ?? lineForPath(text, p.path) }));
    problemLines = new Set(placed.map((p) => p.line));
    problemsSummary.textContent = placed.length ? `${placed.length} problem${placed.length === 1 ? '' : 's'}` : problems ? 'No problems.' : '';
    problemsSummary.className = placed.length ? 'error-text' : 'ok-text';
    fill(problemsList, ...placed.map((p) => h('li', {},
      h('button', { type: 'button', class: 'link', onclick: () => goToLine(p.line) }, `Line ${p.line}`), ': ',
      p.path ? [h('code', {}, p.path), ': '] : '', p.message)));
    renderGutter();
  }

  function changedPaths() {
    return changed.value.split(/[\s,]+/).filter(Boolean);
  }

  let previewSeq = 0;
  async function runPreview() {
    const seq = ++previewSeq;
    const text = editor.value;
    renderGutter();
    const syntax = syntaxProblems(text);
    if (syntax.length) {
      showProblems(syntax);
      fill(preview, h('p', { class: 'muted' }, 'Fix the YAML to see a preview.'));
      return;
    }
    const body = { config: parseConfig(text), ref: ref.value.trim() };
    if (sha.value.trim()) body.sha = sha.value.trim();
    if (changedPaths().length) body.changed = changedPaths();
    preview.setAttribute('aria-busy', 'true');
    try {
      const res = await api('POST', '/api/rules/preview', { json: body, signal });
      if (seq !== previewSeq) return;
      showProblems([]);
      renderPreview(res.body);
    } catch (err) {
      if (seq !== previewSeq || err?.name === 'AbortError') return;
      if ((err.status === 422 || err.status === 400) && err.errors.length) {
        // The preview names places inside its request body (`config.rules[0]…`); the editor holds only the config.
        showProblems(err.errors.map((e) => ({ ...e, path: String(e.path ?? '').replace(/^config(\.|$)/, '') })));
        fill(preview, h('p', { class: 'muted' }, 'The configuration has problems; fix them to see a preview.'));
      } else {
        fill(preview, errorBox(err));
      }
    } finally {
      if (seq === previewSeq) preview.setAttribute('aria-busy', 'false');
    }
  }

  function renderPreview(p) {
    const builds = p.builds ?? [];
    fill(preview, 
      h('p', {}, `${p.source ?? '?'} `, h('code', {}, p.sourceref ?? p.ref), ` → ${builds.length} build${builds.length === 1 ? '' : 's'}`),
      table('Builds this ref would start', ['Rules', 'Tags', 'Context', 'Dockerfile', 'Stage', 'Deploys to'],
        builds.map((b) => [b.rules.join(', '), tags(b.tags), h('code', {}, b.context), h('code', {}, b.dockerfile), b.target ? h('code', {}, b.target) : 'last', (b.deploy ?? []).join(', ') || '—']),
        'Nothing would be built.'),
      (p.applications ?? []).map((a) => [
        h('h3', {}, 'Release of ', h('code', {}, a.environment)),
        table(`Release of ${a.environment}: services in update order`, ['Step', 'Service', 'Role', 'Image', 'Replicas', 'Ports', 'After', 'This ref'],
          a.services.map((s) => [String(s.step), h('code', {}, s.service), s.role, h('code', {}, s.from), s.role === 'job' ? 'runs once' : String(s.replicas),
            s.ports.join(', ') || '—', s.dependsOn.join(', ') || (s.role === 'job' ? '—' : 'the jobs'), s.fed ? 'updates it' : 'keeps what runs'])),
        h('p', { class: 'muted' }, 'Services of one step update at the same time; a service that fails rolls every updated service back.'),
      ]),
      p.skipped?.length ? [h('h3', {}, 'Skipped rules'), h('ul', { class: 'skipped' }, p.skipped.map((s) => h('li', {}, h('strong', {}, s.rule), `: ${s.reason}`)))] : null,
      p.warnings?.length ? [h('h3', {}, 'Warnings'), h('ul', {}, p.warnings.map((w) => h('li', {}, typeof w === 'string' ? w : `${w.path ? `${w.path}: ` : ''}${w.message ?? JSON.stringify(w)}`)))] : null);
  }

  let timer = null;
  const schedule = () => { clearTimeout(timer); timer = setTimeout(runPreview, 300); };
  for (const input of [editor, ref, sha, changed]) input.addEventListener('input', schedule);
  editor.addEventListener('input', renderGutter);

  async function save() {
    fill(saveState);
    const text = editor.value;
    const syntax = syntaxProblems(text);
    if (syntax.length) { showProblems(syntax); return; }
    const repo = existing ?? repoFrom(text);
    if (!repo) { showProblems([{ path: 'repository', message: 'required: the GitHub "owner/name" this config belongs to', line: 1 }]); return; }
    saveBtn.disabled = true;
    try {
      await api('PUT', `/api/repos/${repoPath(repo)}`, { text, contentType: 'application/yaml', signal });
      showProblems([]);
      fill(saveState, h('p', { class: 'ok-text' }, 'Saved.'));
      announce(`Saved the configuration of ${repo}`);
      if (!existing) location.hash = `#/repos/${repoPath(repo)}/rules`;
    } catch (err) {
      if ((err.status === 422 || err.status === 400) && err.errors.length) showProblems(err.errors);
      else fill(saveState, errorBox(err));
    } finally {
      saveBtn.disabled = !canSave;
    }
  }

  function repoFrom(text) {
    try { return /^[^/\s]+\/[^/\s]+$/.test(parseConfig(text)?.repository ?? '') ? parseConfig(text).repository : null; } catch { return null; }
  }

  let loaded = false;
  return {
    title: existing ? `Rules of ${existing}` : 'Add a repository',
    element,
    // The editor holds the person's unsaved text: live events never overwrite it.
    onEvent: () => false,
    async refresh() {
      if (loaded) return;
      loaded = true;
      if (existing) {
        const config = await get(`/api/repos/${repoPath(existing)}`, { signal });
        editor.value = typeof config === 'string' ? config : stringify(config, { lineWidth: 0 });
        const branch = config?.default_branch ?? 'main';
        ref.value = `refs/heads/${branch}`;
      } else {
        editor.value = TEMPLATE;
      }
      renderGutter();
      await runPreview();
    },
  };
}
