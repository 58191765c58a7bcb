import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

/**
 * The deployment files under infra/ cannot be run here (no image can be pulled), so they are
 * parsed and held to the facts slipway depends on: the services exist, Redis keeps its data and
 * never evicts, workers reach an engine, and every setting they pass is one slipway reads.
 */
const ROOT = join(import.meta.dirname, '..');
const INFRA = join(ROOT, 'infra');
const run = promisify(execFile);

type Doc = Record<string, any>;

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(join(dir, e.name)) : /\.ya?ml$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}

function load(file: string): Doc[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'), { merge: true });
  if (!Array.isArray(docs)) return [];
  for (const d of docs) {
    const problems = [...d.errors, ...d.warnings].map((e) => e.message);
    if (problems.length > 0) throw new Error(`${relative(ROOT, file)}: ${problems.join('; ')}`);
  }
  return docs.map((d) => d.toJS() as Doc).filter((d) => d !== null);
}

/** The settings src/config.ts reads: the keys of its zod `Env` schema. */
function configKeys(): Set<string> {
  const source = readFileSync(join(ROOT, 'src', 'config.ts'), 'utf8');
  const schema = /const Env = z\.object\(\{([\s\S]*?)\n\}\);/.exec(source)?.[1];
  if (!schema) throw new Error('src/config.ts has no `const Env = z.object({...})`');
  return new Set([...schema.matchAll(/^ {2}([A-Z][A-Z0-9_]*):/gm)].map((m) => m[1] as string));
}

function envNames(environment: unknown): string[] {
  if (Array.isArray(environment)) return environment.map((e) => (typeof e === 'string' ? e.split('=')[0] : e.name) as string);
  return Object.keys((environment as Record<string, unknown>) ?? {});
}

const redisArgs = (args: string[]) => args.join(' ');

describe('infra/ deployment files', () => {
  const keys = configKeys();

  it('every YAML file under infra/ parses without errors or warnings', () => {
    const files = yamlFiles(INFRA).map((f) => relative(INFRA, f)).sort();
    expect(files).toEqual(['compose.yaml', 'k8s/api.yaml', 'k8s/redis.yaml', 'k8s/secret.yaml', 'k8s/worker.yaml', 'swarm/stack.yaml']);
    for (const file of yamlFiles(INFRA)) expect(load(file).length).toBeGreaterThan(0);
  });

  it('reads the settings it checks against from src/config.ts', () => {
    for (const name of ['SLIPWAY_REDIS_URL', 'SLIPWAY_PORT', 'SLIPWAY_HOST', 'SLIPWAY_WEBHOOK_SECRET', 'SLIPWAY_ADMIN_TOKEN', 'DOCKER_HOST', 'SLIPWAY_DATA_DIR']) {
      expect(keys.has(name), name).toBe(true);
    }
  });

  it('the CLI has the serve and worker commands the files start', async () => {
    for (const command of ['serve', 'worker']) {
      const { stdout } = await run(process.execPath, [join(ROOT, 'bin', 'slipway.js'), command, '--help']);
      expect(stdout).toContain(`Usage: slipway ${command}`);
    }
  }, 180_000);

  describe('compose.yaml', () => {
    const [compose] = load(join(INFRA, 'compose.yaml'));
    const services = compose?.services as Record<string, Doc>;

    it('runs slipway serve and worker, Redis and a registry', () => {
      expect(Object.keys(services).sort()).toEqual(['redis', 'registry', 'serve', 'worker']);
      expect(services.serve?.command).toEqual(['serve']);
      expect(services.worker?.command).toEqual(['worker']);
      expect(services.serve?.build).toEqual({ context: '..', dockerfile: 'infra/Dockerfile' });
      expect(services.worker?.image).toBe(services.serve?.image);
    });

    it('serve reaches the engine too: its /readyz checks Docker', () => {
      expect(services.serve?.volumes).toContain('/var/run/docker.sock:/var/run/docker.sock');
    });

    it('Redis keeps an append-only file on a volume and never evicts', () => {
      const args = redisArgs(services.redis?.command);
      expect(args).toContain('--appendonly yes');
      expect(args).toContain('--appendfsync everysec');
      expect(args).toContain('--maxmemory-policy noeviction');
      expect(args).toMatch(/--requirepass \$\{SLIPWAY_REDIS_PASSWORD:\?/);
      expect(services.redis?.volumes).toEqual(['redis-data:/data']);
      expect(compose?.volumes).toHaveProperty('redis-data');
    });

    it('the registry allows deletes; the worker reaches the engine, privileged, with a data volume', () => {
      expect(services.registry?.environment).toEqual({ REGISTRY_STORAGE_DELETE_ENABLED: 'true' });
      expect(services.worker?.privileged).toBe(true);
      expect(services.worker?.volumes).toContain('/var/run/docker.sock:/var/run/docker.sock');
      expect(services.worker?.volumes).toContain('worker-data:/var/lib/slipway');
      // Longer than the worker's shutdown: grace for the running build plus hand-back.
      expect(services.worker?.stop_grace_period).toBe('40s');
    });

    it('slipway containers get only settings slipway reads, including Redis and the webhook secret', () => {
      for (const name of ['serve', 'worker']) {
        const names = envNames(services[name]?.environment);
        expect(names).toContain('SLIPWAY_REDIS_URL');
        expect(names).toContain('SLIPWAY_REDIS_PASSWORD');
        for (const env of names) expect(keys.has(env), `${name}: ${env}`).toBe(true);
      }
      expect(envNames(services.serve?.environment)).toEqual(expect.arrayContaining(['SLIPWAY_WEBHOOK_SECRET', 'SLIPWAY_ADMIN_TOKEN', 'SLIPWAY_HOST']));
      expect(services.serve?.environment.SLIPWAY_HOST).toBe('0.0.0.0');
    });
  });

  describe('swarm/stack.yaml', () => {
    const [stack] = load(join(INFRA, 'swarm', 'stack.yaml'));
    const services = stack?.services as Record<string, Doc>;

    it('replicates the API, runs a worker on every builder node and one Redis with AOF and noeviction', () => {
      expect(Object.keys(services).sort()).toEqual(['redis', 'serve', 'worker']);
      expect(services.serve?.deploy.replicas).toBeGreaterThanOrEqual(2);
      expect(services.worker?.deploy.mode).toBe('global');
      expect(services.worker?.deploy.placement.constraints).toContain('node.labels.slipway.builder == true');
      // serve's /readyz checks Docker: it runs where a manager's socket is.
      expect(services.serve?.volumes).toContain('/var/run/docker.sock:/var/run/docker.sock');
      expect(services.serve?.deploy.placement.constraints).toContain('node.role == manager');
      expect(services.worker?.volumes).toContain('/var/run/docker.sock:/var/run/docker.sock');
      const args = redisArgs(services.redis?.command);
      expect(args).toContain('--appendonly yes');
      expect(args).toContain('--maxmemory-policy noeviction');
      expect(args).toMatch(/--requirepass \$\{SLIPWAY_REDIS_PASSWORD:\?/);
      expect(services.redis?.deploy.replicas).toBe(1);
    });

    it('slipway services get only settings slipway reads', () => {
      for (const name of ['serve', 'worker']) {
        const names = envNames(services[name]?.environment);
        expect(names).toContain('SLIPWAY_REDIS_URL');
        expect(names).toContain('SLIPWAY_REDIS_PASSWORD');
        for (const env of names) expect(keys.has(env), `${name}: ${env}`).toBe(true);
      }
    });
  });

  describe('k8s/', () => {
    const docs = yamlFiles(join(INFRA, 'k8s')).flatMap(load);
    const find = (kind: string, name: string) => docs.find((d) => d.kind === kind && d.metadata?.name === name);
    const podSpecs = docs.filter((d) => d.spec?.template?.spec).map((d) => [d.metadata.name as string, d.spec.template.spec as Doc] as const);

    it('has the API Deployment with replicas and its Service, the worker Deployment, Redis and the Secret', () => {
      expect(docs.map((d) => `${d.kind}/${d.metadata?.name}`).sort()).toEqual([
        'Deployment/slipway-api',
        'Deployment/slipway-worker',
        'Namespace/slipway',
        'Secret/slipway',
        'Service/redis',
        'Service/slipway',
        'StatefulSet/redis',
      ]);
      for (const d of docs.filter((d) => d.kind !== 'Namespace')) expect(d.metadata.namespace, `${d.kind}/${d.metadata.name}`).toBe('slipway');
      expect(find('Deployment', 'slipway-api')?.spec.replicas).toBeGreaterThanOrEqual(2);
      expect(find('Deployment', 'slipway-api')?.spec.template.spec.containers[0].args).toEqual(['serve']);
      expect(find('Deployment', 'slipway-worker')?.spec.template.spec.containers[0].args).toEqual(['worker']);
    });

    it('every Service selects the pods of a workload, on a port they expose', () => {
      for (const svc of docs.filter((d) => d.kind === 'Service')) {
        const selector = svc.spec.selector as Record<string, string>;
        const workload = docs.find(
          (d) => d.spec?.template && Object.entries(selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v),
        );
        expect(workload, `Service/${svc.metadata.name}`).toBeDefined();
        const ports = workload?.spec.template.spec.containers.flatMap((c: Doc) => c.ports ?? []);
        for (const p of svc.spec.ports) {
          const target = p.targetPort ?? p.port;
          expect(ports.some((cp: Doc) => cp.name === target || cp.containerPort === target), `Service/${svc.metadata.name} → ${target}`).toBe(true);
        }
      }
    });

    it('API pods mount a Docker socket (their /readyz checks Docker) on nodes that have one', () => {
      const spec = find('Deployment', 'slipway-api')?.spec.template.spec;
      expect(spec.nodeSelector).toEqual({ 'slipway.io/docker': 'true' });
      const sock = spec.volumes.find((v: Doc) => v.hostPath?.path === '/var/run/docker.sock');
      expect(sock?.hostPath.type).toBe('Socket');
      expect(spec.containers[0].volumeMounts).toContainEqual({ name: sock.name, mountPath: '/var/run/docker.sock' });
    });

    it('workers run on builder nodes, one per node, privileged, with the node’s docker socket', () => {
      const spec = find('Deployment', 'slipway-worker')?.spec.template.spec;
      expect(spec.nodeSelector).toEqual({ 'slipway.io/builder': 'true' });
      expect(spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey).toBe('kubernetes.io/hostname');
      expect(spec.containers[0].securityContext.privileged).toBe(true);
      const sock = spec.volumes.find((v: Doc) => v.hostPath?.path === '/var/run/docker.sock');
      expect(sock?.hostPath.type).toBe('Socket');
      expect(spec.containers[0].volumeMounts).toContainEqual({ name: sock.name, mountPath: '/var/run/docker.sock' });
      expect(spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(30);
    });

    it('Redis is a StatefulSet with a persistent volume, AOF and noeviction', () => {
      const redis = find('StatefulSet', 'redis');
      const args = redisArgs(redis?.spec.template.spec.containers[0].args);
      expect(args).toContain('--appendonly yes');
      expect(args).toContain('--appendfsync everysec');
      expect(args).toContain('--maxmemory-policy noeviction');
      expect(args).toContain('--requirepass $(REDIS_PASSWORD)');
      expect(redis?.spec.template.spec.containers[0].env).toContainEqual({ name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: 'slipway', key: 'redis-password' } } });
      expect(redis?.spec.volumeClaimTemplates[0].metadata.name).toBe('data');
      expect(redis?.spec.template.spec.containers[0].volumeMounts).toContainEqual({ name: 'data', mountPath: '/data' });
    });

    it('containers get only settings slipway reads; secrets come from keys the Secret has', () => {
      const secret = find('Secret', 'slipway');
      const secretKeys = Object.keys(secret?.stringData ?? {});
      expect(secretKeys).toEqual(expect.arrayContaining(['webhook-secret', 'admin-token']));
      for (const [workload, spec] of podSpecs) {
        if (workload === 'redis') continue;
        for (const env of spec.containers[0].env as Doc[]) {
          expect(keys.has(env.name), `${workload}: ${env.name}`).toBe(true);
          const ref = env.valueFrom?.secretKeyRef;
          if (ref) {
            expect(ref.name).toBe('slipway');
            expect(secretKeys).toContain(ref.key);
          }
        }
      }
      const apiEnv = find('Deployment', 'slipway-api')?.spec.template.spec.containers[0].env as Doc[];
      expect(apiEnv.find((e) => e.name === 'SLIPWAY_WEBHOOK_SECRET')?.valueFrom.secretKeyRef.key).toBe('webhook-secret');
      expect(apiEnv.find((e) => e.name === 'SLIPWAY_HOST')?.value).toBe('0.0.0.0');
    });
  });

  describe('Dockerfile', () => {
    const dockerfile = readFileSync(join(INFRA, 'Dockerfile'), 'utf8');
    const instructions = dockerfile
      .replace(/\\\n/g, ' ')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));

    it('builds on node 20, installs the locked dependencies and starts the slipway CLI', () => {
      expect(instructions.slice(0, 2)).toEqual(['ARG NODE_IMAGE=node:20-bookworm-slim', 'FROM ${NODE_IMAGE}']);
      expect(instructions).toContain('COPY package.json package-lock.json ./');
      expect(instructions.some((l) => /^RUN npm ci --omit=dev\b/.test(l))).toBe(true);
      expect(instructions).toContain('ENTRYPOINT ["node", "/app/bin/slipway.js"]');
      expect(instructions).toContain('CMD ["serve"]');
    });

    it('installs what a worker runs: git, dockerd, ip, setpriv, haproxy', () => {
      const install = instructions.find((l) => l.includes('apt-get install')) ?? '';
      for (const pkg of ['git', 'docker.io', 'iproute2', 'util-linux', 'haproxy']) expect(install.split(/\s+/)).toContain(pkg);
    });

    it('copies only paths that exist, and its ignore file keeps local state out of the context', () => {
      for (const line of instructions.filter((l) => l.startsWith('COPY '))) {
        const sources = line.split(/\s+/).slice(1, -1);
        for (const source of sources) expect(existsSync(join(ROOT, source)), source).toBe(true);
      }
      const ignored = readFileSync(join(INFRA, 'Dockerfile.dockerignore'), 'utf8').split('\n');
      expect(ignored).toEqual(expect.arrayContaining(['node_modules', '.git', '.slipway']));
    });
  });
});
