// An environment: what runs now, the rollout in progress with its tasks, history, and the
// Promote / Roll back buttons (disabled with the reason when they cannot be used). An application
// of several services (`services` in the environment's view) shows every service: what each runs,
// how a release goes service by service, what each release changed, and every service's digest in
// the confirmations.
import { api, get, listOf, hasRole, repoPath } from '../api.js';
import { h, fill, shortDigest, status, time, tags, table, duration, errorBox, announce, confirmDialog } from '../dom.js';
import { buildCache, tagsOf, ACTIVE_ROLLOUT } from './common.js';

/** Statuses only a release's services have, with their shapes (status() knows the others). */
const ENTRY_SYMBOL = { unchanged: '=', removed: '⊖' };

/** A release service's status, a word plus a shape like every other status. */
function entryStatus(value) {
  const el = status(value);
  if (ENTRY_SYMBOL[value]) el.firstChild.textContent = ENTRY_SYMBOL[value];
  return el;
}

/** What a record runs, by service name (a single-service record: one nameless entry), as the deployer compares them. */
function imagesOf(d) {
  return d.services?.length ? d.services.map((e) => ({ name: e.name, digest: e.digest })) : [{ name: '', digest: d.digest }];
}

/** Whether two records run exactly the same images, service by service. */
function sameImages(a, b) {
  const x = imagesOf(a);
  const y = imagesOf(b);
  return x.length === y.length && x.every((e) => y.some((r) => r.name === e.name && r.digest === e.digest));
}

const entryOf = (d, name) => d?.services?.find((e) => e.name === name) ?? null;

/**
 * What a service ran before `d`: its recorded `before` once the release started (the worker fills it
 * in then), else (still queued) what the environment runs now.
 */
function beforeOf(entry, d, current) {
  if (d.phase) return entry.before ?? null;
  return current && current.id !== d.id ? entryOf(current, entry.name)?.digest ?? null : null;
}

/**
 * `a → b` for each service a promotion or rollback would change, in rollout order: `names` are the
 * environment's services, `from` what runs now, `to` what it would run.
 */
function plannedChanges(names, from, to) {
  return names.map((name) => ({ name, before: entryOf(from, name)?.digest ?? null, after: entryOf(to, name)?.digest ?? null }));
}

/** The changes for a confirmation: every service with its full digests. */
function changeList(changes) {
  return h('ul', { class: 'release-changes' }, changes.map((c) => h('li', {},
    h('code', {}, c.name), ': ',
    c.before ? h('strong', {}, c.before) : 'nothing (new here)',
    ' → ', h('strong', {}, c.after ?? 'none'),
    c.before && c.before === c.after ? ' (unchanged)' : '')));
}

/**
 * One service's line in the history: what its part of release `d` changed, and how it ended. A
 * release still queued shows what it would change from what runs now (`current`).
 */
function historyChange(entry, d, current) {
  const queued = d.status === 'pending' && !d.phase;
  const before = d.phase || queued ? beforeOf(entry, d, current) : null;
  let what;
  if (entry.status === 'unchanged') what = 'unchanged';
  else if (!d.phase && !(queued && before)) what = shortDigest(entry.digest); // never started: what it was to run
  else if (!before) what = ['new ', shortDigest(entry.digest)];
  else if (before === entry.digest && queued) what = [entry.role === 'job' ? 'runs again ' : 'same image ', shortDigest(entry.digest)];
  else if (before === entry.digest) what = [entry.role === 'job' ? 'ran again ' : 'same image, updated ', shortDigest(entry.digest)];
  else what = [shortDigest(before), ' → ', shortDigest(entry.digest)];
  const ended = !d.phase || entry.status === 'succeeded' || entry.status === 'unchanged' ? null : [' ', entry.status === 'pending' ? h('span', { class: 'muted' }, 'not reached') : entryStatus(entry.status)];
  const why = entry.error && !(d.error ?? '').includes(entry.error) ? [': ', entry.error] : null;
  return h('li', {}, h('code', {}, entry.name), ' ', what, ended, why);
}

/** Healthy, starting or other, for a task, from Swarm's state (a task is `running` once its health check passes). */
function taskHealth(t) {
  const state = t.state ?? t.status ?? '';
  if (state === 'running' && (t.desiredState ?? 'running') === 'running') return h('span', { class: 'status status-succeeded' }, h('span', { 'aria-hidden': 'true' }, '●'), ' healthy');
  if (['new', 'pending', 'assigned', 'accepted', 'preparing', 'ready', 'starting'].includes(state)) return h('span', { class: 'status status-running' }, h('span', { 'aria-hidden': 'true' }, '◐'), ' starting');
  if (['failed', 'rejected', 'orphaned'].includes(state)) return h('span', { class: 'status status-failed' }, h('span', { 'aria-hidden': 'true' }, '✕'), ' ', state);
  return h('span', { class: 'muted' }, state || '—');
}

/**
 * The tasks table. With `entry` (a release's service rolling out), each task also says whether it
 * runs the new image or the old one, and whether it is healthy yet.
 */
function tasksTable(tasks, caption, entry, before) {
  const version = (t) => (!t.digest ? '—' : t.digest === entry.digest ? h('strong', {}, 'new') : t.digest === before ? 'old' : 'other');
  const headers = entry ? ['Task', 'Slot', 'Version', 'Health', 'State', 'Desired', 'Image', 'Message'] : ['Task', 'Slot', 'State', 'Desired', 'Image', 'Message'];
  return table({ text: caption }, headers,
    tasks.map((t) => {
      const cells = [h('code', {}, String(t.id ?? '').slice(0, 12)), String(t.slot ?? ''), t.state ?? t.status ?? '', t.desiredState ?? t.desired ?? '', t.digest ? shortDigest(t.digest) : t.image ?? '', t.message ?? t.error ?? ''];
      if (entry) cells.splice(2, 0, version(t), taskHealth(t));
      return cells;
    }),
    'No task reported yet.');
}

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
  let application = false; // the environment runs several services

  /** The role this environment asks for to deploy, promote or roll back. */
  const neededRole = (envConfig) => (envConfig?.protected ? 'deployer' : 'developer');

  async function act(kind, path, body) {
    busy = true;
    fill(feedback);
    try {
      const res = await api('POST', path, { json: body ?? {}, signal });
      const d = res.body;
      fill(feedback, h('p', { class: 'ok-text' }, res.status === 200 && kind === 'Promote'
        ? (application ? 'Nothing to do: those images already run here.' : 'Nothing to do: that digest already runs here.')
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
    const services = Array.isArray(env.services) && env.services.length ? env.services : null;
    application = !!services;
    const names = services?.map((s) => s.name) ?? [];
    const role = neededRole(envConfig);
    const roleOk = hasRole(ctx.me, role);
    const currentTags = await tagsOf(current, builds, buildById);
    // The rollout in progress as the deployer reports it now (a release: the tasks of its rolling service).
    const detail = rolling ? await get(`/api/deployments/${encodeURIComponent(rolling.id)}`, { signal }).catch(() => rolling) : null;

    // Promote
    const sourceCurrent = source?.current ?? null;
    const sourceRolling = (source?.history ?? []).find((d) => ACTIVE_ROLLOUT.has(d.status));
    const sourceLacks = services && sourceCurrent ? names.filter((n) => !entryOf(sourceCurrent, n)) : [];
    let promoteReason = null;
    if (!envConfig.promote_from) promoteReason = `${envName} has no promote_from: builds deploy here directly.`;
    else if (!roleOk) promoteReason = `Promoting to ${envName} needs the ${role} role; you are ${ctx.me.role}.`;
    else if (rolling) promoteReason = `A rollout is running here (revision ${rolling.revision}, ${rolling.status}).`;
    else if (sourceRolling) promoteReason = `${envConfig.promote_from} is mid-rollout (revision ${sourceRolling.revision}); promote once it has finished.`;
    else if (!sourceCurrent) promoteReason = `${envConfig.promote_from} runs nothing yet.`;
    else if (sourceLacks.length) promoteReason = `${envConfig.promote_from}'s revision ${sourceCurrent.revision} has no ${sourceLacks.join(', ')}; deploy a build here instead.`;
    else if (services && current && current.services?.length === names.length && names.every((n) => entryOf(current, n)?.digest === entryOf(sourceCurrent, n).digest)) promoteReason = `${envName} already runs what ${envConfig.promote_from} runs (every service's digest is the same).`;
    else if (!services && current && sourceCurrent.digest === current.digest) promoteReason = `${envName} already runs what ${envConfig.promote_from} runs.`;
    const sourceTags = await tagsOf(sourceCurrent, builds, buildById);

    // Roll back: to the newest succeeded revision before the current one that runs other images
    // (a release: other digests for its services).
    const previous = current ? history.find((d) => d.status === 'succeeded' && d.revision < current.revision && !sameImages(current, d)) : null;
    const previousLacks = services && previous ? names.filter((n) => !entryOf(previous, n)) : [];
    let rollbackReason = null;
    if (!roleOk) rollbackReason = `Rolling back ${envName} needs the ${role} role; you are ${ctx.me.role}.`;
    else if (rolling) rollbackReason = `A rollout is running here (revision ${rolling.revision}, ${rolling.status}).`;
    else if (!previous) rollbackReason = 'There is no earlier good revision to roll back to.';
    else if (previousLacks.length) rollbackReason = `The newest earlier good revision (${previous.revision}) has no ${previousLacks.join(', ')}; deploy a build instead.`;
    const previousTags = await tagsOf(previous, builds, buildById);

    const tagNote = (t) => (t.length ? `, tags ${t.join(', ')}` : '');
    const promoteBody = () => (services
      ? [h('p', {}, `Roll out what ${envConfig.promote_from} runs now (revision ${sourceCurrent.revision}${tagNote(sourceTags)}) to ${envName}, service by service:`),
        changeList(plannedChanges(names, current, sourceCurrent)),
        h('p', {}, 'It replaces ', current ? `revision ${current.revision}${tagNote(currentTags)}` : 'nothing (first deployment)', '.')]
      : [h('p', {}, 'Roll out ', h('strong', {}, sourceCurrent.digest), ` — what ${envConfig.promote_from} runs now`, sourceTags.length ? ` (tags ${sourceTags.join(', ')})` : '', ` — to ${envName}.`),
        h('p', {}, 'It replaces ', current ? [h('strong', {}, current.digest), ` (revision ${current.revision}${currentTags.length ? `, tags ${currentTags.join(', ')}` : ''})`] : 'nothing (first deployment)', '.')]);
    const rollbackBody = () => (services
      ? [h('p', {}, `Roll ${envName} back to revision ${previous.revision}${tagNote(previousTags)}, service by service:`),
        changeList(plannedChanges(names, current, previous)),
        h('p', {}, `It replaces revision ${current.revision}${tagNote(currentTags)}.`)]
      : [h('p', {}, 'Roll ', envName, ' back to ', h('strong', {}, previous.digest), ` (revision ${previous.revision}${previousTags.length ? `, tags ${previousTags.join(', ')}` : ''}).`),
        h('p', {}, 'It replaces ', h('strong', {}, current.digest), ` (revision ${current.revision}).`)]);

    const promoteBtn = h('button', { type: 'button', class: 'primary', disabled: !!promoteReason || busy, 'aria-describedby': promoteReason ? 'promote-reason' : null,
      onclick: async () => {
        const ok = await confirmDialog({ title: `Promote to ${envName}?`, body: promoteBody(), action: 'Promote' });
        if (ok) await act('Promote', `${base}/${encodeURIComponent(envName)}/promote`);
      } }, 'Promote');
    const rollbackBtn = h('button', { type: 'button', class: 'danger', disabled: !!rollbackReason || busy, 'aria-describedby': rollbackReason ? 'rollback-reason' : null,
      onclick: async () => {
        const ok = await confirmDialog({ title: `Roll back ${envName}?`, body: rollbackBody(), action: 'Roll back' });
        if (ok) await act('Roll back', `${base}/${encodeURIComponent(envName)}/rollback`, { revision: previous.revision });
      } }, 'Roll back');

    // An application's address is its first web service's first port.
    const port = services
      ? services.find((s) => s.role === 'web' && s.ports?.length)?.ports[0]?.split(':')[0]
      : (envConfig.ports ?? [])[0]?.split(':')[0];
    const url = port ? `http://${location.hostname}:${port}/` : null;

    return [
      h('div', { class: 'card' },
        h('h2', {}, 'Now running'),
        h('dl', { class: 'facts', id: 'current' },
          h('dt', {}, 'Revision'), h('dd', { id: 'current-revision' }, current ? String(current.revision) : 'none'),
          services ? null : [h('dt', {}, 'Digest'), h('dd', { id: 'current-digest' }, current ? shortDigest(current.digest) : 'nothing deployed')],
          h('dt', {}, 'Tags'), h('dd', {}, current ? tags(currentTags) : '—'),
          h('dt', {}, 'Since'), h('dd', {}, current ? time(current.finishedAt) : '—'),
          h('dt', {}, 'By'), h('dd', {}, current ? `${current.by} (${current.trigger})` : '—'),
          services
            ? [h('dt', {}, 'Services'), h('dd', {}, `${services.length}, named `, h('code', {}, `${env.service ?? envConfig.service ?? '?'}-<name>`), ' in Swarm; rolled out in the order below')]
            : [h('dt', {}, 'Service'), h('dd', {}, h('code', {}, env.service ?? envConfig.service ?? '?'), envConfig.replicas ? ` × ${envConfig.replicas}` : '')],
          url ? [h('dt', {}, 'URL'), h('dd', {}, h('a', { href: url, rel: 'noopener' }, url))] : null,
          envConfig.promote_from ? [h('dt', {}, 'Promotes from'), h('dd', {}, h('a', { href: `#/repos/${repoPath(repo)}/environments/${encodeURIComponent(envConfig.promote_from)}` }, envConfig.promote_from), ', which runs ', describe(sourceCurrent, sourceTags))] : null,
          envConfig.protected ? [h('dt', {}, 'Protected'), h('dd', {}, 'yes: deploy, promote and roll back need the deployer role')] : null),
        services ? servicesTable(services, current, detail) : null,
        h('div', { class: 'actions' },
          h('div', {}, promoteBtn, promoteReason ? h('p', { class: 'reason', id: 'promote-reason' }, promoteReason) : null),
          h('div', {}, rollbackBtn, rollbackReason ? h('p', { class: 'reason', id: 'rollback-reason' }, rollbackReason) : null))),
      rolling ? rolloutCard(rolling, detail, current, services) : null,
      h('h2', {}, 'History'),
      services
        ? table({ text: `Releases of ${envName}` }, ['Revision', 'Status', 'Trigger', 'Changes', 'By', 'Started', 'Took', 'Error'],
          history.map((d) => [String(d.revision), status(d.status), d.trigger,
            d.services?.length ? h('ul', { class: 'changes' }, d.services.map((e) => historyChange(e, d, current))) : shortDigest(d.digest),
            d.by, time(d.startedAt), duration(d.startedAt, d.finishedAt), d.error ?? '']),
          'No releases yet.')
        : table({ text: `Rollouts of ${envName}` }, ['Revision', 'Status', 'Trigger', 'Digest', 'By', 'Started', 'Took', 'Error'],
          history.map((d) => [String(d.revision), status(d.status), d.trigger, shortDigest(d.digest), d.by, time(d.startedAt), duration(d.startedAt, d.finishedAt), d.error ?? '']),
          'No rollouts yet.'),
    ];
  }

  /**
   * An application's services: how each is configured and what the current release runs; while a
   * release rolls out, the service it is updating says so, with how many of its new tasks are healthy.
   */
  function servicesTable(services, current, detail) {
    const known = new Set(services.map((s) => s.name));
    // A service the current release runs that the config no longer lists still runs: show it.
    const gone = (current?.services ?? []).filter((e) => !known.has(e.name));
    const stateOf = (name) => {
      const entry = entryOf(current, name);
      const now = entry ? entryStatus(entry.status) : h('span', { class: 'muted' }, 'not deployed');
      const rollingEntry = entryOf(detail, name);
      if (!rollingEntry || !['running', 'failed', 'rolled_back'].includes(rollingEntry.status)) return now;
      const fresh = (rollingEntry.tasks ?? []).filter((t) => t.digest === rollingEntry.digest && (t.desiredState ?? 'running') === 'running');
      const healthy = fresh.filter((t) => t.state === 'running').length;
      const doing = detail.phase === 'rolling_back' ? `${rollingEntry.status === 'failed' ? 'failed, ' : ''}rolling back` : rollingEntry.status === 'running' ? 'updating now' : rollingEntry.status.replace('_', ' ');
      return [now, h('br'), h('span', { class: 'status status-running' }, h('span', { 'aria-hidden': 'true' }, '◐'), ' ', doing,
        rollingEntry.tasks ? `: ${healthy} of ${fresh.length} new task${fresh.length === 1 ? '' : 's'} healthy` : '')];
    };
    return table({ text: 'Services of this environment', visible: true }, ['Name', 'Role', 'Swarm service', 'Replicas', 'Ports', 'Image from', 'Digest', 'State'],
      [
        ...services.map((s) => {
          const entry = entryOf(current, s.name);
          return [h('code', {}, s.name), s.role, h('code', {}, s.service), s.role === 'job' ? 'runs once per release' : String(s.replicas ?? ''),
            s.ports?.length ? s.ports.join(', ') : '—', s.source ?? '',
            entry ? shortDigest(entry.digest) : h('span', { class: 'muted' }, 'not deployed'), stateOf(s.name)];
        }),
        ...gone.map((e) => [h('code', {}, e.name), e.role, h('code', {}, e.service), '—', '—', h('span', { class: 'muted' }, 'no longer in the config'), shortDigest(e.digest), entryStatus(e.status)]),
      ], 'No service configured.');
  }

  /** The rollout in progress and its Swarm tasks (when the deployer reports them); a release service by service. */
  function rolloutCard(d, detail, current, services) {
    detail ??= d;
    if (!detail.services?.length || !services) {
      const tasks = detail.tasks ?? detail.progress?.tasks ?? [];
      return h('div', { class: 'card rollout', 'aria-labelledby': 'rollout-title' },
        h('h2', { id: 'rollout-title' }, `Rollout in progress: revision ${d.revision}`),
        h('p', {}, status(detail.status), ' ', detail.trigger, ' of ', shortDigest(detail.digest), ' by ', detail.by, detail.startedAt ? ` · running ${duration(detail.startedAt)}` : ''),
        detail.message ? h('p', {}, detail.message) : null,
        tasksTable(tasks, 'Tasks of this rollout'));
    }
    const back = detail.phase === 'rolling_back';
    const active = detail.services.filter((e) => e.status === 'running' || Array.isArray(e.tasks));
    return h('div', { class: `card rollout${back ? ' rolling-back' : ''}`, 'aria-labelledby': 'rollout-title' },
      h('h2', { id: 'rollout-title' }, `Rollout in progress: revision ${d.revision}`, back ? ' (rolling back)' : ''),
      h('p', {}, status(detail.status), ` · a release of ${detail.services.length} services (${detail.trigger}) by `, detail.by, detail.startedAt ? ` · running ${duration(detail.startedAt)}` : ' · queued'),
      back ? h('p', { class: 'phase', id: 'rollout-phase' }, h('strong', {}, '↶ Rolling back: '),
        'a service did not become healthy; every service this release already updated is being restored to what it ran before.') : null,
      table({ text: 'Services of this release', visible: true }, ['Service', 'Role', 'Status', 'Before', 'After', 'Error'],
        detail.services.map((e) => {
          const before = beforeOf(e, detail, current);
          return [h('code', {}, e.name), e.role, entryStatus(e.status), before ? shortDigest(before) : h('span', { class: 'muted' }, detail.phase ? 'new' : '—'),
            before && before === e.digest ? [shortDigest(e.digest), ' (same)'] : shortDigest(e.digest), e.error ?? ''];
        })),
      active.length
        ? active.map((e) => [
          h('h3', {}, 'Tasks of ', h('code', {}, e.name), ` (${e.service})`, back ? ', rolling back' : ', updating'),
          tasksTable(e.tasks ?? [], `Tasks of ${e.name}, old and new`, e, beforeOf(e, detail, current))])
        : h('p', { class: 'muted' }, detail.status === 'pending' ? 'Waiting for a deploy worker to start it.'
          : back ? 'The services this release changed are being restored, the last updated first.' : 'No service is updating at this moment.'));
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
