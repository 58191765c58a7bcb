// One build: status, tags, digest, its log streaming live, and Cancel.
import { api, get, streamEvents, parseData, hasRole, repoPath } from '../api.js';
import { h, fill, shortDigest, shortSha, status, time, tags, duration, errorBox, announce } from '../dom.js';
import { ACTIVE_BUILD } from './common.js';

export function buildPage({ params, ctx, signal }) {
  const id = params.id;
  const summary = h('div', { class: 'card' }, h('p', {}, 'Loading…'));
  const logState = h('p', { class: 'muted', id: 'log-state', 'aria-live': 'polite' }, 'Connecting to the log…');
  const log = h('pre', { class: 'log', id: 'log', tabindex: '0', 'aria-labelledby': 'log-title', 'aria-describedby': 'log-state' });
  const element = h('section', {},
    h('h1', {}, 'Build ', h('code', {}, id)),
    summary,
    h('h2', { id: 'log-title' }, 'Log'), logState, log);
  let build = null;
  let rollouts = [];
  let following = false;
  let recheck = null;
  signal.addEventListener('abort', () => clearTimeout(recheck));
  let stickToBottom = true;
  log.addEventListener('scroll', () => { stickToBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4; });

  function appendLine(text, kind) {
    const line = h('span', { class: kind ? `line ${kind}` : 'line' }, text, '\n');
    log.append(line);
    if (stickToBottom) log.scrollTop = log.scrollHeight;
  }

  // The server sends `event: line|step|cut` with the rendered line as data, ids for resuming,
  // and `event: end` with the outcome when the build is over.
  let lastId = null;
  function onLogEvent({ event, data, id: eventId }) {
    if (eventId) lastId = eventId;
    if (event === 'end') {
      const outcome = parseData(data);
      logState.textContent = `Log complete${outcome?.status ? `: the build ${String(outcome.status).replace('_', ' ')}` : ''}.`;
      return;
    }
    const value = parseData(data);
    const text = typeof value === 'string' ? value : value?.line ?? value?.text ?? value?.message ?? data;
    appendLine(String(text), event === 'step' ? 'step' : event === 'cut' ? 'cut' : null);
  }

  // Follows the log until the build ends; when the stream drops mid-build it resumes after the
  // last line it showed (Last-Event-ID), or starts over when the server gave no ids.
  async function followLog() {
    if (following) return;
    following = true;
    let attempt = 0;
    try {
      while (!signal.aborted) {
        if (!lastId) fill(log);
        try {
          await streamEvents(`/api/builds/${encodeURIComponent(id)}/log`, {
            signal,
            lastEventId: lastId,
            onOpen: () => { logState.textContent = 'Following the log live.'; attempt = 0; },
            onEvent: onLogEvent,
          });
        } catch (err) {
          if (signal.aborted) return;
          if (err?.status && err.status < 500) { fill(logState, errorBox(err)); return; }
        }
        build = await get(`/api/builds/${encodeURIComponent(id)}`, { signal }).catch(() => build);
        if (build && !ACTIVE_BUILD.has(build.status)) {
          logState.textContent = `Log complete: the build ${build.status.replace('_', ' ')}.`;
          renderSummary();
          return;
        }
        logState.textContent = 'Log stream interrupted; reconnecting…';
        await new Promise((r) => setTimeout(r, Math.min(500 * 2 ** attempt++, 5000)));
      }
    } finally {
      following = false;
    }
  }

  async function cancel(button) {
    button.disabled = true;
    try {
      await api('POST', `/api/builds/${encodeURIComponent(id)}/cancel`, { signal });
      announce('Cancel requested');
    } catch (err) {
      summary.append(errorBox(err));
    }
  }

  function renderSummary() {
    if (!build) return;
    const b = build;
    const active = ACTIVE_BUILD.has(b.status);
    const canCancel = hasRole(ctx.me, 'developer');
    const reason = !active ? null : canCancel ? null : `Cancelling needs the developer role; you are ${ctx.me.role}.`;
    const cancelBtn = active
      ? h('button', { type: 'button', class: 'danger', disabled: !canCancel, 'aria-describedby': reason ? 'cancel-reason' : null, onclick: (e) => cancel(e.currentTarget) }, 'Cancel')
      : null;
    const repoLink = h('a', { href: `#/builds?repo=${encodeURIComponent(b.repo)}` }, b.repo);
    fill(summary, 
      h('dl', { class: 'facts' },
        h('dt', {}, 'Status'), h('dd', { id: 'build-status' }, status(b.status), b.supersededBy ? h('span', {}, ' by ', h('a', { href: `#/builds/${encodeURIComponent(b.supersededBy)}` }, b.supersededBy)) : null),
        h('dt', {}, 'Repository'), h('dd', {}, repoLink, ' · ', h('a', { href: `#/repos/${repoPath(b.repo)}/rules` }, 'rules')),
        h('dt', {}, 'Ref'), h('dd', {}, h('code', {}, b.ref), ' at ', shortSha(b.sha)),
        h('dt', {}, 'Rules'), h('dd', {}, (b.rules ?? []).join(', ') || '—'),
        h('dt', {}, 'Image'), h('dd', {}, h('code', {}, b.image)),
        h('dt', {}, 'Dockerfile'), h('dd', { id: 'build-dockerfile' }, h('code', {}, `${b.context}/${b.dockerfile}`), b.target ? [' stage ', h('code', {}, b.target)] : null, b.cache ? ' · cache' : ''),
        h('dt', {}, 'Tags'), h('dd', { id: 'build-tags' }, tags(b.tags)),
        h('dt', {}, 'Digest'), h('dd', { id: 'build-digest' }, shortDigest(b.digest)),
        h('dt', {}, 'Queued'), h('dd', {}, time(b.queuedAt), b.by ? ` by ${b.by}` : ''),
        h('dt', {}, 'Ran'), h('dd', {}, b.startedAt ? `${duration(b.startedAt, b.finishedAt)}${b.finishedAt ? '' : ' so far'}` : 'not started'),
        b.deploy?.length ? [h('dt', {}, 'Deploys to'), h('dd', {}, b.deploy.map((env, i) => [i ? ', ' : '', h('a', { href: `#/repos/${repoPath(b.repo)}/environments/${encodeURIComponent(env)}` }, env)]))] : null,
        rollouts.length ? [h('dt', {}, 'Rollouts'), h('dd', { id: 'build-rollouts' }, rollouts.map((d, i) => [i ? ', ' : '',
          h('a', { href: `#/repos/${repoPath(b.repo)}/environments/${encodeURIComponent(d.environment)}` }, `${d.environment} revision ${d.revision}`), ' ', status(d.status)]))] : null,
        b.error ? [h('dt', {}, 'Error'), h('dd', { class: 'error-text' }, b.error)] : null,
        b.warnings?.length ? [h('dt', {}, 'Warnings'), h('dd', {}, h('ul', {}, b.warnings.map((w) => h('li', {}, w))))] : null),
      cancelBtn ? h('div', { class: 'actions' }, cancelBtn, reason ? h('p', { id: 'cancel-reason', class: 'reason' }, reason) : null) : null);
  }

  return {
    title: `Build ${id}`,
    element,
    onEvent(e) {
      // Only this build's changes concern this page; unknown event shapes still refresh.
      const d = e.data;
      if (d && typeof d === 'object' && (d.id || d.build) && d.id !== id && d.build !== id && d.build?.id !== id) return false;
      return true;
    },
    async refresh() {
      build = await get(`/api/builds/${encodeURIComponent(id)}`, { signal });
      // The rollouts this build started, with their outcome (a missing one is skipped, not fatal).
      rollouts = (await Promise.all((build.deployments ?? []).map((d) => get(`/api/deployments/${encodeURIComponent(d)}`, { signal }).catch(() => null)))).filter(Boolean);
      renderSummary();
      followLog();
      // While the build is active, also check every few seconds (events make it prompt, this certain).
      clearTimeout(recheck);
      if (ACTIVE_BUILD.has(build.status) && !signal.aborted) recheck = setTimeout(() => this.refresh().catch(() => {}), 5000);
    },
  };
}
