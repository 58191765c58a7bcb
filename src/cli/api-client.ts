import { ConfigError, loadConfig } from '../config.js';

/** What every client command shares: settings, one HTTP call shape, failures with their exit codes. */

/** A failure the CLI reports with its exit code: 1 failed operation, 2 bad usage or invalid input. */
export class CliFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
  }
}

export interface ApiAnswer {
  status: number;
  body: Record<string, unknown>;
}

/** The request body as sent: its content type and text. */
export interface RequestBody {
  type: string;
  text: string;
}

function settings(): { url: string; token: string } {
  let c;
  try {
    c = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) throw new CliFailure(err.message, 2);
    throw err;
  }
  if (!c.token) throw new CliFailure('SLIPWAY_TOKEN is not set: export a token (slipway up prints an admin token; POST /api/tokens makes more)', 2);
  return { url: c.url.replace(/\/+$/, ''), token: c.token };
}

/** Sends one request with the token; answers the raw response, or throws a CliFailure for an error status. */
export async function fetchApi(method: string, path: string, opts: { accept?: string; body?: RequestBody } = {}): Promise<Response> {
  const { url, token } = settings();
  let res: Response;
  try {
    res = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        accept: opts.accept ?? 'application/json',
        ...(opts.body ? { 'content-type': opts.body.type } : {}),
      },
      ...(opts.body ? { body: opts.body.text } : {}),
    });
  } catch (err) {
    throw new CliFailure(`cannot reach slipway at ${url} (${String((err as Error).cause ?? (err as Error).message)}): is it running? (SLIPWAY_URL)`, 1);
  }
  if (res.status >= 400) throw failure(res.status, parseBody(await res.text()));
  return res;
}

/** A JSON call: answers the status and the parsed body. */
export async function callApi(method: string, path: string, body?: RequestBody): Promise<ApiAnswer> {
  const res = await fetchApi(method, path, body ? { body } : {});
  return { status: res.status, body: parseBody(await res.text()) };
}

/** A JSON call with a JSON body. */
export function sendJson(method: string, path: string, payload: unknown): Promise<ApiAnswer> {
  return callApi(method, path, { type: 'application/json', text: JSON.stringify(payload) });
}

function parseBody(text: string): Record<string, unknown> {
  try {
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    return { error: text };
  }
}

/** api.md's error shape as a message a person can act on. */
function failure(status: number, body: Record<string, unknown>): CliFailure {
  const problems = Array.isArray(body.errors) ? (body.errors as { path?: string; message?: string }[]) : [];
  const lines = [String(body.error ?? `HTTP ${status}`)];
  if (problems.length > 1 || (problems.length === 1 && !lines[0]!.includes(problems[0]!.message ?? ''))) {
    for (const p of problems) lines.push(`  ${p.path ? `${p.path}: ` : ''}${p.message}`);
  }
  if (status === 401) lines.push('check SLIPWAY_TOKEN');
  if (status === 403) lines.push('ask an admin for a token with a higher role');
  // Invalid input is the caller's to fix (2); anything else is a failed operation (1).
  return new CliFailure(lines.join('\n'), status === 400 || status === 422 ? 2 : 1);
}

export function repoArg(value: string): string {
  if (!/^[A-Za-z0-9._-]+\/[A-Za-z0-9._-]+$/.test(value)) throw new CliFailure(`not a repository: "${value}" (expected owner/name)`, 2);
  return value;
}

/** Runs a command body and turns failures into a message on stderr and the exit code. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args) => {
    try {
      await fn(...args);
    } catch (err) {
      if (err instanceof CliFailure) {
        process.stderr.write(`${err.message}\n`);
        process.exit(err.exitCode);
      }
      throw err;
    }
  };
}
