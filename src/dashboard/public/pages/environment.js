// An environment: what runs now, the rollout in progress with its tasks, history, and the
// Promote / Roll back buttons (disabled with the reason when they cannot be used).
import { api, get, listOf, hasRole, repoPath } from '../api.js';
import { h, fill, shortDigest, status, time, tags, table, duration, errorBox, announce, confirmDialog } from '../dom.js';
import { buildCache, tagsOf, ACTIVE_ROLLOUT } from './common.js';

export function environmentPage({ params, ctx, signal }) {
  const repo = `${params.owner}/${params.name}`;
  const envName = params.env;
  const base = `/api/repos/${repoPath(repo)}/environments`;
  const content = h('div', {}, h('p', {}, 'Loading…'));
  const feedback = h('div', { 'aria-live': 'polite' });
  const element = h('section', {},
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'Repositories'), ' / ', repo, ' / environments'),
    h('h1', {}, h('code', {}, envName), ' of ', h('code', {}, repo)),
    feedback, content);
  const buildById = buildCache(signal);
  let busy = false; // a request of ours is in flight
  let activeRollout = false;

  /** The role this environment asks for to deploy, promote or roll back. */
  const neededRole = (envConfig) => (envConfig?.protected ? 'deployer' : 'developer');

  async function act(kind, path, body) {
    busy = true;
    fill(feedback);
    try {
      const res = await api('POST', path, { json: body ?? {}, signal });
      const d = res.body;
      fill(feedback, h('p', { class: 'ok-text' }, res.status === 200 && kind === 'Promote'
        ? 'Nothing to do: that digest already runs here.'
        : `${kind} started: revision ${d?.revision ?? '?'} (${d?.status ?? 'queued'}).`));
      announce(`${kind} started`);
    } catch (err) {
      if (err?.name !== 'AbortError') fill(feedback, errorBox(err));
    } finally {
      busy = false;
      await page.refresh().catch(() => {});
    }
  }

  function describe(d, t) {
    return d ? [shortDigest(d.digest), ' (revision ', String(d.revision), t?.length ? [', tags ', t.join(', ')] : '', ')'] : 'nothing';
  }

  async function render() {
    const config = await get(`/api/repos/${repoPath(repo)}`, { signal });
    const envConfig = config?.environments?.[envName] ?? {};
    const env = await get(`${base}/${encodeURIComponent(envName)}`, { signal });
    const history = env.history ?? [];
    const source = envConfig.promote_from
      ? await get(`${base}/${encodeURIComponent(envConfig.promote_from)}`, { signal }).catch(() => null)
      : null;
    const builds = listOf(await get(`/api/builds?repo=${encodeURIComponent(repo)}&limit=50`, { signal }).catch(() => []), 'builds');
    const current = env.current;
    const rolling = history.find((d) => ACTIVE_ROLLOUT.has(d.status));
    activeRollout = !!rolling;
    const role = neededRole(envConfig);
    const roleOk = hasRole(ctx.me, role);
    const currentTags = await tagsOf(current, builds, buildById);

    // Promote
    const sourceCurrent = source?.current ?? null;
    const sourceRolling = (source?.history ?? []).find((d) => ACTIVE_ROLLOUT.has(d.status));
    let promoteReason = null;
    if (!envConfig.promote_from) promoteReason = `${envName} has no promote_from: builds deploy here directly.`;
    else if (!roleOk) promoteReason = `Promoting to ${envName} needs the ${role} role; you are ${ctx.me.role}.`;
    else if (rolling) promoteReason = `A rollout is running here (revision ${rolling.revision}, ${rolling.status}).`;
    else if (sourceRolling) promoteReason = `${envConfig.promote_from} is mid-rollout (revision ${sourceRolling.revision}); promote once it has finished.`;
    else if (!sourceCurrent) promoteReason = `${envConfig.promote_from} runs nothing yet.`;
    else if (current && sourceCurrent.digest === current.digest) promoteReason = `${envName} already runs what ${envConfig.promote_from} runs.`;
    const sourceTags = await tagsOf(sourceCurrent, builds, buildById);

    // Roll back: to the newest succeeded revision before the current one.
    const previous = current ? history.find((d) => d.status === 'succeeded' && d.revision < current.revision && d.digest !== current.digest) : null;
    let rollbackReason = null;
    if (!roleOk) rollbackReason = `Rolling back ${envName} needs the ${role} role; you are ${ctx.me.role}.`;
    else if (rolling) rollbackReason = `A rollout is running here (revision ${rolling.revision}, ${rolling.status}).`;
    else if (!previous) rollbackReason = 'There is no earlier good revision to roll back to.';
    const previousTags = await tagsOf(previous, builds, buildById);

    const promoteBtn = h('button', { type: 'button', class: 'primary', disabled: !!promoteReason || busy, 'aria-describedby': promoteReason ? 'promote-reason' : null,
      onclick: async () => {
        const ok = await confirmDialog({
          title: `Promote to ${envName}?`,
          body: [h('p', {}, 'Roll out ', h('strong', {}, sourceCurrent.digest), ` — what ${envConfig.promote_from} runs now`, sourceTags.length ? ` (tags ${sourceTags.join(', ')})` : '', ` — to ${envName}.`),
            h('p', {}, 'It replaces ', current ? [h('strong', {}, current.digest), ` (revision ${current.revision}${currentTags.length ? `, tags ${currentTags.join(', ')}` : ''})`] : 'nothing (first deployment)', '.')],
          action: 'Promote',
        });
        if (ok) await act('Promote', `${base}/${encodeURIComponent(envName)}/promote`);
      } }, 'Promote');
    const rollbackBtn = h('button', { type: 'button', class: 'danger', disabled: !!rollbackReason || busy, 'aria-describedby': rollbackReason ? 'rollback-reason' : null,
      onclick: async () => {
        const ok = await confirmDialog({
          title: `Roll back ${envName}?`,
          body: [h('p', {}, 'Roll ', envName, ' back to ', h('strong', {}, previous.digest), ` (revision ${previous.revision}${previousTags.length ? `, tags ${previousTags.join(', ')}` : ''}).`),
            h('p', {}, 'It replaces ', h('strong', {}, current.digest), ` (revision ${current.revision}).`)],
          action: 'Roll back',
        });
        if (ok) await act('Roll back', `${base}/${encodeURIComponent(envName)}/rollback`, { revision: previous.revision });
      } }, 'Roll back');

    const port = (envConfig.ports ?? [])[0]?.split(':')[0];
    const url = port ? `http://${location.hostname}:${port}/` : null;

    return [
      h('div', { class: 'card' },
        h('h2', {}, 'Now running'),
        h('dl', { class: 'facts', id: 'current' },
          h('dt', {}, 'Revision'), h('dd', { id: 'current-revision' }, current ? String(current.revision) : 'none'),
          h('dt', {}, 'Digest'), h('dd', { id: 'current-digest' }, current ? shortDigest(current.digest) : 'nothing deployed'),
          h('dt', {}, 'Tags'), h('dd', {}, current ? tags(currentTags) : '—'),
          h('dt', {}, 'Since'), h('dd', {}, current ? time(current.finishedAt) : '—'),
          h('dt', {}, 'By'), h('dd', {}, current ? `${current.by} (${current.trigger})` : '—'),
          h('dt', {}, 'Service'), h('dd', {}, h('code', {}, env.service ?? envConfig.service ?? '?'), envConfig.replicas ? ` × ${envConfig.replicas}` : ''),
          url ? [h('dt', {}, 'URL'), h('dd', {}, h('a', { href: url, rel: 'noopener' }, url))] : null,
          envConfig.promote_from ? [h('dt', {}, 'Promotes from'), h('dd', {}, h('a', { href: `#/repos/${repoPath(repo)}/environments/${encodeURIComponent(envConfig.promote_from)}` }, envConfig.promote_from), ', which runs ', describe(sourceCurrent, sourceTags))] : null,
          envConfig.protected ? [h('dt', {}, 'Protected'), h('dd', {}, 'yes: deploy, promote and roll back need the deployer role')] : null),
        h('div', { class: 'actions' },
          h('div', {}, promoteBtn, promoteReason ? h('p', { class: 'reason', id: 'promote-reason' }, promoteReason) : null),
          h('div', {}, rollbackBtn, rollbackReason ? h('p', { class: 'reason', id: 'rollback-reason' }, rollbackReason) : null))),
      rolling ? await rolloutCard(rolling) : null,
      h('h2', {}, 'History'),
      table({ text: `Rollouts of ${envName}` }, ['Revision', 'Status', 'Trigger', 'Digest', 'By', 'Started', 'Took', 'Error'],
        history.map((d) => [String(d.revision), status(d.status), d.trigger, shortDigest(d.digest), d.by, time(d.startedAt), duration(d.startedAt, d.finishedAt), d.error ?? '']),
        'No rollouts yet.'),
    ];
  }

  /** The rollout in progress and its Swarm tasks (when the deployer reports them). */
  async function rolloutCard(d) {
    const detail = await get(`/api/deployments/${encodeURIComponent(d.id)}`, { signal }).catch(() => d);
    const tasks = detail.tasks ?? detail.progress?.tasks ?? [];
    return h('div', { class: 'card rollout', 'aria-labelledby': 'rollout-title' },
      h('h2', { id: 'rollout-title' }, `Rollout in progress: revision ${d.revision}`),
      h('p', {}, status(detail.status), ' ', detail.trigger, ' of ', shortDigest(detail.digest), ' by ', detail.by, detail.startedAt ? ` · running ${duration(detail.startedAt)}` : ''),
      detail.message ? h('p', {}, detail.message) : null,
      table({ text: 'Tasks of this rollout' }, ['Task', 'Slot', 'State', 'Desired', 'Image', 'Message'],
        tasks.map((t) => [h('code', {}, String(t.id ?? '').slice(0, 12)), String(t.slot ?? ''), t.state ?? t.status ?? '', t.desiredState ?? t.desired ?? '', t.digest ? shortDigest(t.digest) : t.image ?? '', t.message ?? t.error ?? '']),
        'No task reported yet.'));
  }

  // While a rollout runs, the page also checks every few seconds: live events make it prompt,
  // this makes it certain.
  let recheck = null;
  signal.addEventListener('abort', () => clearTimeout(recheck));
  const page = {
    title: `${envName} of ${repo}`,
    element,
    async refresh() {
      const parts = await render();
      fill(content, ...parts.filter(Boolean));
      clearTimeout(recheck);
      if (activeRollout && !signal.aborted) recheck = setTimeout(() => page.refresh().catch(() => {}), 5000);
    },
    showError(err) { fill(content, errorBox(err)); },
  };
  return page;
}
