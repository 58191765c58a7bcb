import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerBuildRunner, parseEgressPolicy, type EgressPolicy, type Endpoint } from '../src/builders/index.js';
import { nameservers, planRules, savedRules } from '../src/builders/egress.js';
import { startDedicatedEngine } from '../src/builders/engine.js';
import { loadConfig } from '../src/config.js';
import { startRedis, type TestRedis } from '../dev/redis.js';
import { BASE, REGISTRY, buildRecord, deleteRegistryRepo, makeRepo } from '../dev/builders.js';
import { leftovers, memoryLog } from './support/builders.js';

/**
 * The egress policy of dedicated builds, attacked from inside a real RUN step: what `public` lets
 * out (the package registry), what it refuses at once (this host's ports, docker0, other builds,
 * private and metadata addresses), `none`, allow-lists, and that no rule outlives its build.
 */

describe('egress policy parsing and planning', () => {
  it('parses public, none and allow-lists, and names what is wrong', () => {
    expect(parseEgressPolicy(undefined)).toEqual({ kind: 'public' });
    expect(parseEgressPolicy(' none ')).toEqual({ kind: 'none' });
    expect(parseEgressPolicy('10.1.0.0/16, registry.npmjs.org,203.0.113.7')).toEqual({ kind: 'allow', entries: ['10.1.0.0/16', 'registry.npmjs.org', '203.0.113.7'] });
    expect(() => parseEgressPolicy('10.1.0.0/33')).toThrow(/"10.1.0.0\/33" is neither an IPv4 address or CIDR/);
    expect(() => parseEgressPolicy('public,10.0.0.0/8')).toThrow(/cannot be part of an allow-list/);
    expect(() => parseEgressPolicy('bad host!')).toThrow(/neither/);
  });

  it('SLIPWAY_BUILD_EGRESS reaches the builders as a policy; a bad value stops start-up naming the variable', () => {
    expect(loadConfig({}).buildEgress).toEqual({ kind: 'public' });
    expect(loadConfig({ SLIPWAY_BUILD_EGRESS: 'none' }).buildEgress).toEqual({ kind: 'none' });
    expect(() => loadConfig({ SLIPWAY_BUILD_EGRESS: '10.0.0.0/99' })).toThrow(/^invalid settings: SLIPWAY_BUILD_EGRESS: "10\.0\.0\.0\/99" is neither/);
  });

  it('uses the non-loopback nameservers of resolv.conf', () => {
    expect(nameservers('# x\nnameserver 127.0.0.53\nnameserver 10.255.255.53\nnameserver ::1\noptions ndots:1\n')).toEqual(['10.255.255.53']);
  });

  it('plans rules keyed on the build bridge only, DNS first, refusals before the internet', async () => {
    const plan = await planRules({
      policy: { kind: 'public' },
      bridge: 'slwb9',
      subnet: '10.231.9.0/24',
      slot: 't.x',
      resolvConf: 'nameserver 10.9.9.9\n',
      hostAddresses: async () => ['192.0.2.2'],
      resolve: async () => ['203.0.113.5'],
      protect: [{ host: 'redis.internal', port: 6379 }],
    });
    for (const r of plan) expect(r.args.join(' ')).toMatch(/(-i|-o|! -o) slwb9\b/);
    const forward = plan.filter((r) => r.chain === 'FORWARD').map((r) => r.label);
    expect(forward[0]).toBe('allow:dns:10.9.9.9');
    expect(forward).toContain('deny:this-host:192.0.2.2/32');
    expect(forward).toContain('deny:slipway-endpoint:6379:203.0.113.5/32');
    expect(forward.indexOf('deny:link-local:169.254.0.0/16')).toBeLessThan(forward.indexOf('allow:internet'));
    expect(plan.find((r) => r.chain === 'INPUT' && r.label === 'deny:this-host')).toBeDefined();
    expect(plan.find((r) => r.table === 'nat')?.args).toEqual(['-s', '10.231.9.0/24', '!', '-o', 'slwb9', '-j', 'MASQUERADE']);
    const none = await planRules({ policy: { kind: 'none' }, bridge: 'slwb9', subnet: '10.231.9.0/24', slot: 't.x', resolvConf: 'nameserver 10.9.9.9\n' });
    expect(none.map((r) => r.label)).toEqual(['deny:this-host', 'deny:everything']);
  });
});

const docker = new Docker();
const run = Date.now().toString(36);
const IMAGE = `${REGISTRY}/slipway-test/egress-${run}`;
let redisServer: TestRedis;
let redis: Redis;
let dataDir: string;
let api: Server;
let apiPort: number;
let repo: { dir: string; sha: string };
let other: Awaited<ReturnType<typeof startDedicatedEngine>> | undefined;
let otherBridge: string;

/** This machine's primary address (the one its default route leaves from), and docker0's. */
function hostAddress(which: 'primary' | 'docker0'): string {
  const out =
    which === 'primary'
      ? execFileSync('ip', ['-4', '-o', 'route', 'get', '203.0.113.1'], { encoding: 'utf8' })
      : execFileSync('ip', ['-4', '-o', 'addr', 'show', 'dev', 'docker0'], { encoding: 'utf8' });
  const m = (which === 'primary' ? /\bsrc (\d+\.\d+\.\d+\.\d+)/ : /\binet (\d+\.\d+\.\d+\.\d+)\//).exec(out);
  if (!m) throw new Error(`no IPv4 address for ${which}: ${out}`);
  return m[1]!;
}

// Each probe prints `probe <name>: open` or `probe <name>: <nc's error>`; a DROP would show as a timeout.
const PROBE = 'p() { if nc -w 4 "$2" "$3" </dev/null 2>/tmp/e; then echo "probe $1: open"; else echo "probe $1: $(tail -n1 /tmp/e)"; fi; }';

function probeFile(targets: [string, string, number][]): string {
  const calls = targets.map(([name, host, port]) => `p ${name} ${host} ${port}`).join('; ');
  return `FROM ${BASE}\nRUN ${PROBE}; ${calls}; nslookup registry.npmjs.org >/dev/null 2>&1 && echo "probe dns: open" || echo "probe dns: failed"\n`;
}

function probes(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/#\d+ probe ([\w-]+): (.*)$/gm)) out[m[1]!] = m[2]!;
  return out;
}

async function runProbe(opts: { egress?: EgressPolicy; network?: 'none'; protect?: Endpoint[]; dockerfile: string }) {
  const { dir, sha } = await makeRepo({ Dockerfile: opts.dockerfile }, repo.dir);
  const runner = new DockerBuildRunner({
    redis,
    docker,
    dataDir,
    defaults: { isolation: 'dedicated', ...(opts.network ? { network: opts.network } : {}) },
    ...(opts.egress ? { egress: opts.egress } : {}),
    protect: opts.protect ?? [],
  });
  const log = memoryLog();
  const build = buildRecord({ repo: 'acme/egress', sha, image: IMAGE, tags: ['probe'], cloneUrl: `file://${dir}` });
  const outcome = await runner.run(build, { signal: new AbortController().signal, log }).then(
    (o) => ({ ok: true as const, digest: o.digest }),
    (err: Error) => ({ ok: false as const, error: err.message }),
  );
  return { outcome, log: log.text(), probes: probes(log.text()) };
}

async function slipwayRules(): Promise<string[]> {
  return (await savedRules()).map((r) => r.args.join(' '));
}

beforeAll(async () => {
  redisServer = await startRedis();
  redis = new Redis(redisServer.url);
  dataDir = await mkdtemp(path.join(tmpdir(), 'slw-egress-'));
  // Stands for slipway's API: listening on every address of the host, as `SLIPWAY_HOST=0.0.0.0` does.
  api = createServer((s) => s.end('api\n'));
  await new Promise<void>((resolve) => api.listen(0, '0.0.0.0', resolve));
  apiPort = (api.address() as { port: number }).port;
  repo = await makeRepo({ Dockerfile: `FROM ${BASE}\n` });
  // Another build's engine, running while the probes run: its bridge must be out of reach.
  other = await startDedicatedEngine({ root: path.join(dataDir, 'builders'), buildId: 'other-build', repo: 'acme/other', cache: false, log: () => undefined });
  otherBridge = (await slipwayRules()).map((r) => /-i (slwb\d+)/.exec(r)?.[1]).find(Boolean)!;
}, 120_000);

afterAll(async () => {
  await other?.close();
  api?.close();
  redis?.disconnect();
  await redisServer?.stop();
  await deleteRegistryRepo(IMAGE);
  await rm(repo.dir, { recursive: true, force: true });
  await rm(dataDir, { recursive: true, force: true });
});

describe('a dedicated build under the public policy', () => {
  it('reaches the package registry and resolves names, and is refused at once by this host, other builds, private and metadata addresses', { timeout: 180_000 }, async () => {
    const eth = hostAddress('primary');
    const docker0 = hostAddress('docker0');
    const k = Number(otherBridge.slice('slwb'.length));
    const result = await runProbe({
      protect: [
        { host: '127.0.0.1', port: redisServer.port },
        { host: '0.0.0.0', port: apiPort },
      ],
      dockerfile: probeFile([
        ['registry', 'registry.npmjs.org', 443],
        ['api-host', eth, apiPort],
        ['api-docker0', docker0, apiPort],
        ['redis', eth, redisServer.port],
        ['registry-port', docker0, 5000],
        ['other-gateway', `10.231.${k}.1`, 80],
        ['other-build', `10.231.${k}.2`, 80],
        ['ten', '10.0.0.1', 80],
        ['metadata', '169.254.169.254', 80],
      ]),
    });
    expect(result.outcome).toMatchObject({ ok: true });
    expect(result.probes.registry).toBe('open');
    expect(result.probes.dns).toBe('open');
    for (const name of ['api-host', 'api-docker0', 'redis', 'registry-port', 'other-gateway', 'other-build', 'ten', 'metadata']) {
      // Connection refused is the REJECT: an answer at once, never a hang until the timeout.
      expect(`${name}: ${result.probes[name]}`).toMatch(new RegExp(`^${name}: .*Connection refused`));
    }
    const sentences = result.log.split('\n').filter((l) => l.startsWith('egress policy public refused'));
    expect(sentences).toHaveLength(1);
    expect(sentences[0]).toMatch(/this host/);
    expect(sentences[0]).toMatch(/link-local range 169\.254\.0\.0\/16/);
    expect(sentences[0]).toMatch(/private range 10\.0\.0\.0\/8/);
    expect(sentences[0]).toMatch(/other builds' networks/);
    expect(result.log).toMatch(/network: egress policy public on slwb\d+/);
    // The other build's rules are still there (it is running); this build's are gone.
    expect((await slipwayRules()).every((r) => r.includes(otherBridge))).toBe(true);
  });

  it('a step that fails because the policy refused it says so first in the one-line error', { timeout: 120_000 }, async () => {
    const result = await runProbe({ dockerfile: `FROM ${BASE}\nRUN echo fetching metadata && nc -w 4 169.254.169.254 80 </dev/null\n` });
    expect(result.outcome.ok).toBe(false);
    const error = (result.outcome as { error: string }).error;
    expect(error).toMatch(/^egress policy public refused connections to link-local range 169\.254\.0\.0\/16 \(\d+ packets?\); step \[2\/2\] RUN echo fetching metadata/);
    expect(error).toMatch(/exit code 1; last output: fetching metadata \| .*Connection refused/);
  });
});

describe('narrower policies', () => {
  it('builder.network: none reaches nothing, not even DNS or the registry, and fails fast', { timeout: 120_000 }, async () => {
    const result = await runProbe({ network: 'none', dockerfile: probeFile([['registry', '203.0.113.80', 443], ['ten', '10.0.0.1', 80]]) });
    expect(result.outcome).toMatchObject({ ok: true });
    expect(result.probes.registry).toMatch(/Connection refused/);
    expect(result.probes.ten).toMatch(/Connection refused/);
    expect(result.probes.dns).toBe('failed');
    expect(result.log).toMatch(/network: egress policy none/);
    expect(result.log).toMatch(/egress policy none refused connections to any address \(no network\)/);
  });

  it('an allow-list lets out only what it names', { timeout: 180_000 }, async () => {
    const named = await runProbe({ egress: parseEgressPolicy('registry.npmjs.org'), dockerfile: probeFile([['registry', 'registry.npmjs.org', 443], ['ten', '10.0.0.1', 80]]) });
    expect(named.probes.registry).toBe('open');
    expect(named.probes.dns).toBe('open');
    expect(named.probes.ten).toMatch(/Connection refused/);
    const elsewhere = await runProbe({ egress: parseEgressPolicy('198.51.100.0/24'), dockerfile: probeFile([['registry', 'registry.npmjs.org', 443]]) });
    expect(elsewhere.probes.registry).toMatch(/Connection refused/);
    expect(elsewhere.log).toMatch(/egress policy allow-list \(198\.51\.100\.0\/24\) refused connections to an address outside the allow-list/);
  });

  it('leaves no rule, bridge, engine or directory of its builds behind', async () => {
    await other?.close();
    other = undefined;
    expect(await slipwayRules()).toEqual([]);
    expect(await leftovers(dataDir)).toEqual([]);
  });
});
