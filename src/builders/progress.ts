import { createRequire } from 'node:module';
import path from 'node:path';
import protobuf from 'protobufjs';

/** What a build stream tells us, turned into log lines with step markers and timing. */
export interface ProgressSink {
  step(name: string): void;
  line(text: string): void;
}

interface Timestamp {
  seconds?: string | number;
  nanos?: number;
}
interface Vertex {
  digest: string;
  name: string;
  cached: boolean;
  started?: Timestamp | null;
  completed?: Timestamp | null;
  error: string;
}
interface StatusResponse {
  vertexes: Vertex[];
  logs: { vertex: string; msg: Uint8Array }[];
  warnings: { vertex: string; short: Uint8Array }[];
}

let statusType: protobuf.Type | undefined;
function loadStatusType(): protobuf.Type {
  // dockerode ships the BuildKit StatusResponse schema the Engine API streams (base64 in `aux`).
  const require = createRequire(import.meta.url);
  const proto = path.join(path.dirname(require.resolve('dockerode')), 'proto', 'buildkit_status.proto');
  statusType ??= protobuf.loadSync(proto).lookupType('moby.buildkit.v1.StatusResponse');
  return statusType;
}

/** Output lines of a failing step that its one-line reason quotes. */
const TAIL_LINES = 3;

function seconds(ts: Timestamp | null | undefined): number | undefined {
  if (!ts || ts.seconds === undefined) return undefined;
  return Number(ts.seconds) + (ts.nanos ?? 0) / 1e9;
}

/**
 * Decodes the JSON-lines stream of POST /build (BuildKit, `version=2`): vertexes become numbered
 * steps (`#3 [2/4] RUN make`), their output lines follow, and completion prints `#3 DONE 1.2s`
 * or `#3 CACHED`. Remembers the failing step so the failure reason can name it.
 */
export class BuildProgress {
  private readonly numbers = new Map<string, number>();
  private readonly finished = new Set<string>();
  private readonly announced = new Set<string>();
  private readonly partial = new Map<string, string>();
  private readonly names = new Map<string, string>();
  /** The last few output lines of each step, for the failure reason. */
  private readonly tails = new Map<string, string[]>();
  imageId: string | undefined;
  /**
   * The failing step, its exit code and its last output lines, e.g.
   * `[2/3] RUN npm ci: exit code 1; last output: npm ERR! 404 Not Found | npm ERR! …`.
   */
  failedStep: string | undefined;
  /** The stream's final error, if any. */
  error: string | undefined;

  constructor(private readonly sink: ProgressSink) {}

  feed(message: Record<string, unknown>): void {
    if (message.id === 'moby.buildkit.trace' && typeof message.aux === 'string') {
      this.trace(loadStatusType().toObject(loadStatusType().decode(Buffer.from(message.aux, 'base64')), {
        longs: String,
        defaults: true,
      }) as StatusResponse);
    } else if (message.id === 'moby.image.id' && message.aux && typeof message.aux === 'object') {
      this.imageId = (message.aux as { ID?: string }).ID;
    } else if (typeof message.error === 'string' || message.errorDetail) {
      const detail = message.errorDetail as { message?: string } | undefined;
      this.error = detail?.message ?? String(message.error);
      this.sink.line(`ERROR: ${this.error}`);
    } else if (typeof message.stream === 'string') {
      for (const l of message.stream.split('\n')) if (l.trim()) this.sink.line(l);
    }
  }

  private number(digest: string): number {
    let n = this.numbers.get(digest);
    if (n === undefined) {
      n = this.numbers.size + 1;
      this.numbers.set(digest, n);
    }
    return n;
  }

  private trace(status: StatusResponse): void {
    for (const v of status.vertexes) {
      if (v.name) this.names.set(v.digest, v.name);
      const n = this.number(v.digest);
      if (!this.announced.has(v.digest) && (v.started || v.cached || v.error)) {
        this.announced.add(v.digest);
        this.sink.step(`#${n} ${this.names.get(v.digest) ?? v.digest.slice(0, 19)}`);
      }
      if (this.finished.has(v.digest)) continue;
      if (v.error) {
        this.finished.add(v.digest);
        this.flushPartial(v.digest);
        this.sink.line(`#${n} ERROR: ${v.error}`);
        if (!v.name.startsWith('[internal]') || !this.failedStep) this.failedStep = this.failure(v);
      } else if (v.cached && v.completed) {
        this.finished.add(v.digest);
        this.sink.line(`#${n} CACHED`);
      } else if (v.completed) {
        this.finished.add(v.digest);
        this.flushPartial(v.digest);
        const start = seconds(v.started);
        const end = seconds(v.completed);
        const took = start !== undefined && end !== undefined ? ` ${(end - start).toFixed(1)}s` : '';
        this.sink.line(`#${n} DONE${took}`);
      }
    }
    for (const log of status.logs) {
      const n = this.number(log.vertex);
      const text = (this.partial.get(log.vertex) ?? '') + Buffer.from(log.msg).toString('utf8');
      const lines = text.split(/\r?\n|\r/);
      this.partial.set(log.vertex, lines.pop() ?? '');
      for (const l of lines) this.output(log.vertex, n, l);
    }
    for (const w of status.warnings) this.sink.line(`WARNING: ${Buffer.from(w.short).toString('utf8')}`);
  }

  private output(digest: string, n: number, text: string): void {
    this.sink.line(`#${n} ${text}`);
    if (!text.trim()) return;
    const tail = this.tails.get(digest) ?? [];
    const line = text.trim();
    tail.push(line.length > 120 ? `${line.slice(0, 119)}…` : line);
    if (tail.length > TAIL_LINES) tail.shift();
    this.tails.set(digest, tail);
  }

  private flushPartial(digest: string): void {
    const rest = this.partial.get(digest);
    if (rest) this.output(digest, this.number(digest), rest);
    this.partial.delete(digest);
  }

  /** `<step>: exit code N; last output: a | b | c` (the engine's own words when it names no exit code). */
  private failure(v: Vertex): string {
    const name = v.name.length > 160 ? `${v.name.slice(0, 159)}…` : v.name;
    const code = /exit code:? (\d+)/.exec(v.error)?.[1];
    const tail = this.tails.get(v.digest) ?? [];
    const why = code !== undefined ? `exit code ${code}` : v.error;
    return tail.length > 0 ? `${name}: ${why}; last output: ${tail.join(' | ')}` : `${name}: ${why}`;
  }
}

/** Splits a Docker JSON-lines stream into objects and hands each to `onMessage`; resolves at its end. */
export function readJsonLines(
  stream: NodeJS.ReadableStream,
  onMessage: (msg: Record<string, unknown>) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const handle = (line: string) => {
      if (!line.trim()) return;
      try {
        onMessage(JSON.parse(line) as Record<string, unknown>);
      } catch {
        onMessage({ stream: line });
      }
    };
    stream.on('data', (chunk: Buffer | string) => {
      buf += chunk.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const l of lines) handle(l);
    });
    stream.on('end', () => {
      handle(buf);
      resolve();
    });
    stream.on('close', () => resolve());
    stream.on('error', reject);
  });
}
