/**
 * HTTP load from another process: `tsx load.ts <url> [concurrency]` sends GETs back to back until it
 * receives SIGTERM (or "stop" on stdin), then prints one JSON line:
 * {requests, failed, versions: {<body>: count}, errors: [first few]}.
 * A request fails on a connection error, a timeout (5 s) or a status other than 200.
 */
import http from 'node:http';

const url = new URL(process.argv[2] ?? 'http://127.0.0.1:18080/');
const concurrency = Number(process.argv[3] ?? 8);
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });

let requests = 0;
let failed = 0;
let stopping = false;
const versions: Record<string, number> = {};
const errors: string[] = [];

function once(): Promise<void> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        requests++;
        if (res.statusCode === 200) {
          const v = body.trim();
          versions[v] = (versions[v] ?? 0) + 1;
        } else {
          failed++;
          if (errors.length < 10) errors.push(`status ${res.statusCode}: ${body.slice(0, 100)}`);
        }
        resolve();
      });
      res.on('error', (err) => fail(err.message, resolve));
    });
    req.on('timeout', () => req.destroy(new Error('timeout after 5 s')));
    req.on('error', (err) => fail(err.message, resolve));
  });
}

function fail(message: string, resolve: () => void): void {
  requests++;
  failed++;
  if (errors.length < 10) errors.push(message);
  resolve();
}

async function worker(): Promise<void> {
  while (!stopping) await once();
}

const workers = Array.from({ length: concurrency }, () => worker());
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await Promise.all(workers);
  agent.destroy();
  process.stdout.write(`${JSON.stringify({ requests, failed, versions, errors })}\n`);
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.stdin.on('data', (d) => {
  if (String(d).includes('stop')) void stop();
});
process.stdout.write('ready\n');
