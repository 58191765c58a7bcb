import { spawn } from 'node:child_process';

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program with an argument vector (never a shell string); resolves with its exit status and output. */
export function exec(
  file: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; signal?: AbortSignal; onStderrLine?: (line: string) => void; input?: string } = {},
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      signal: opts.signal,
      killSignal: 'SIGKILL',
    });
    // A program that exits before reading its input must not fail us with EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
    let stdout = '';
    let stderr = '';
    let partial = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      stderr += text;
      if (opts.onStderrLine) {
        const lines = (partial + text).split(/\r?\n|\r/);
        partial = lines.pop() ?? '';
        for (const line of lines) if (line.trim()) opts.onStderrLine(line);
      }
    });
    child.on('error', (err) => {
      if (opts.signal?.aborted) resolve({ code: null, stdout, stderr });
      else reject(err);
    });
    child.on('close', (code) => {
      if (partial.trim() && opts.onStderrLine) opts.onStderrLine(partial);
      resolve({ code, stdout, stderr });
    });
  });
}
