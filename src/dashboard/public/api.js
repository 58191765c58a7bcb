// The API client: bearer token from sessionStorage, JSON errors turned into ApiError, and
// server-sent events read with fetch (EventSource cannot send an Authorization header).

const TOKEN_KEY = 'slipway.token';

export const session = {
  get token() { return sessionStorage.getItem(TOKEN_KEY); },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

export class ApiError extends Error {
  constructor(status, body, fallback) {
    super(body?.error ?? fallback);
    this.name = 'ApiError';
    this.status = status;
    this.errors = Array.isArray(body?.errors) ? body.errors : [];
    this.body = body;
  }
}

/** Listeners for "the token stopped working" (401), so the app can ask for a new one. */
const unauthorizedListeners = new Set();
export function onUnauthorized(fn) { unauthorizedListeners.add(fn); }

function headers(extra = {}) {
  const out = { ...extra };
  if (session.token) out.Authorization = `Bearer ${session.token}`;
  return out;
}

export async function api(method, path, { json, text, contentType, signal } = {}) {
  const init = { method, headers: headers({ Accept: 'application/json' }), signal };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers['Content-Type'] = 'application/json';
  } else if (text !== undefined) {
    init.body = text;
    init.headers['Content-Type'] = contentType ?? 'text/plain';
  }
  let res;
  // Reads are retried when the request never got an answer (the browser aborts requests in
  // flight when the machine's network changes); writes are not, since they may have landed.
  for (let attempt = 0; ; attempt++) {
    try {
      res = await fetch(path, init);
      break;
    } catch (err) {
      if (err?.name === 'AbortError') throw err;
      if (method !== 'GET' || attempt >= 3) throw new ApiError(0, null, `slipway is unreachable (${err?.message ?? err})`);
      await new Promise((r) => setTimeout(r, 250 * (attempt + 1)));
    }
  }
  const body = await readBody(res);
  if (!res.ok) {
    if (res.status === 401) for (const fn of unauthorizedListeners) fn();
    throw new ApiError(res.status, typeof body === 'object' ? body : null, `${method} ${path} answered ${res.status}${typeof body === 'string' && body ? `: ${body.slice(0, 200)}` : ''}`);
  }
  return { status: res.status, body };
}

async function readBody(res) {
  const type = res.headers.get('content-type') ?? '';
  const raw = await res.text();
  if (type.includes('json') && raw) {
    try { return JSON.parse(raw); } catch { return raw; }
  }
  return raw;
}

export const get = (path, opts) => api('GET', path, opts).then((r) => r.body);

/** The first array among a response's values: `{builds: [...]}` → [...]; an array stays itself. */
export function listOf(body, ...keys) {
  if (Array.isArray(body)) return body;
  for (const k of keys) if (Array.isArray(body?.[k])) return body[k];
  for (const v of Object.values(body ?? {})) if (Array.isArray(v)) return v;
  return [];
}

export const repoPath = (repo) => repo.split('/').map(encodeURIComponent).join('/');

/**
 * Follows a server-sent event stream until it ends or `signal` aborts; calls onEvent({event, data, id}).
 * `lastEventId` resumes a stream after the last event seen (the server decides whether it can).
 * Resolves when the server closes the stream; rejects with ApiError on a non-2xx answer.
 */
export async function streamEvents(path, { signal, onEvent, onOpen, lastEventId, idleMs = 40_000 }) {
  const extra = { Accept: 'text/event-stream' };
  if (lastEventId) extra['Last-Event-ID'] = lastEventId;
  // slipway's streams send a heartbeat every 15 s: a stream silent for longer is dead even when
  // the connection looks open (a dropped network path), so it is ended and the caller reconnects.
  const own = new AbortController();
  const stop = () => own.abort();
  signal?.addEventListener('abort', stop, { once: true });
  let idle = setTimeout(stop, idleMs);
  const alive = () => { clearTimeout(idle); idle = setTimeout(stop, idleMs); };
  try {
    await readStream(path, { headers: headers(extra), signal: own.signal, onEvent, onOpen, alive });
  } catch (err) {
    if (signal?.aborted || !own.signal.aborted) throw err;
    // Ended for silence: resolve like a closed stream, so the caller reconnects.
  } finally {
    clearTimeout(idle);
    signal?.removeEventListener('abort', stop);
  }
}

async function readStream(path, { headers: hdrs, signal, onEvent, onOpen, alive }) {
  const res = await fetch(path, { headers: hdrs, signal, cache: 'no-store' });
  if (!res.ok) {
    const body = await readBody(res);
    if (res.status === 401) for (const fn of unauthorizedListeners) fn();
    throw new ApiError(res.status, typeof body === 'object' ? body : null, `${path} answered ${res.status}`);
  }
  onOpen?.(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let event = { event: 'message', data: [], id: undefined };
  const dispatch = () => {
    if (event.data.length) onEvent({ event: event.event, data: event.data.join('\n'), id: event.id });
    event = { event: 'message', data: [], id: event.id };
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    alive();
    buffer += value;
    let nl;
    // Lines end in \n, \r\n or \r (the SSE grammar); an empty line dispatches the event.
    while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const sep = buffer[nl] === '\r' && buffer[nl + 1] === '\n' ? 2 : 1;
      if (buffer[nl] === '\r' && nl + 1 === buffer.length) break; // a \r\n split across chunks
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + sep);
      if (line === '') { dispatch(); continue; }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let val = colon < 0 ? '' : line.slice(colon + 1);
      if (val.startsWith(' ')) val = val.slice(1);
      if (field === 'data') event.data.push(val);
      else if (field === 'event') event.event = val;
      else if (field === 'id') event.id = val;
    }
  }
  dispatch();
}

/** Parses an event's data as JSON when it is JSON; otherwise gives the text. */
export function parseData(data) {
  try { return JSON.parse(data); } catch { return data; }
}

export const ROLES = ['viewer', 'developer', 'deployer', 'admin'];
export const hasRole = (me, role) => ROLES.indexOf(me?.role) >= ROLES.indexOf(role);
