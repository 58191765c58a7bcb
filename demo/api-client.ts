/** The little of slipway's HTTP API the demo uses, as a signed-in client (bearer token). */
export class DemoApiError extends Error {
  constructor(readonly status: number, readonly body: unknown, what: string) {
    const detail = typeof body === 'object' && body && 'error' in body ? String((body as { error: unknown }).error) : JSON.stringify(body);
    super(`${what} answered ${status}: ${detail}`);
  }
}

export class DemoClient {
  constructor(readonly url: string, private readonly token: string) {}

  async call<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: T }> {
    const res = await fetch(`${this.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': contentType }),
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // a text answer stays text
    }
    if (!res.ok) throw new DemoApiError(res.status, parsed, `${method} ${path}`);
    return { status: res.status, body: parsed as T };
  }

  get<T>(path: string): Promise<T> {
    return this.call<T>('GET', path).then((r) => r.body);
  }

  /**
   * Follows a server-sent event stream until the server ends it or `signal` aborts;
   * calls `onEvent` with each event's name and data.
   */
  async follow(path: string, onEvent: (event: string, data: string) => void, signal: AbortSignal): Promise<void> {
    const res = await fetch(`${this.url}${path}`, {
      headers: { authorization: `Bearer ${this.token}`, accept: 'text/event-stream' },
      signal,
    });
    if (!res.ok || !res.body) throw new DemoApiError(res.status, await res.text(), `GET ${path}`);
    const decoder = new TextDecoder();
    let buffer = '';
    let name = 'message';
    let data: string[] = [];
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl).replace(/\r$/, '');
          buffer = buffer.slice(nl + 1);
          if (line === '') {
            if (data.length) onEvent(name, data.join('\n'));
            name = 'message';
            data = [];
          } else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          else if (line.startsWith('event:')) name = line.slice(6).trim();
        }
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    }
  }
}
