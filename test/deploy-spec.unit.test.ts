import { describe, expect, it } from 'vitest';
import { DeployError, healthCheck, readRepoConfig, renderProxyConfig, serviceSpec } from '../src/deploy/index.js';
import { environmentSpecs, RulesError, validateConfig, type EnvironmentSpec } from '../src/rules/index.js';

/** What deploy reads of a config and makes of it, with no services: environments, the service spec, the proxy's config. */

const doc = (environments: unknown) => ({ repository: 'acme/web', image: 'localhost:5000/acme/web', environments });
/** One environment as deploy reads it: validated and typed by the rules engine. */
const spec = (env: unknown, name = 'staging'): EnvironmentSpec => environmentSpecs(validateConfig(doc({ [name]: env })))[name]!;
const problems = (environments: unknown) => {
  try {
    validateConfig(doc(environments));
  } catch (err) {
    if (err instanceof RulesError) return err.problems;
    throw err;
  }
  return [];
};

describe('environments config', () => {
  it('fills the documented defaults', () => {
    expect(spec({ service: 'acme-web-staging' })).toEqual({
      name: 'staging',
      service: 'acme-web-staging',
      replicas: 1,
      ports: [],
      endpoint: 'proxy',
      env: {},
      update: { parallelism: 1, delayMs: 1000, order: 'start-first', failureAction: 'rollback', monitorMs: 5000, maxFailureRatio: 0 },
      protected: false,
    });
  });

  it('parses ports, durations, health commands and env values', () => {
    const env = spec({
      service: 'acme-web',
      replicas: 4,
      ports: ['18081:8080', '18082:9090/udp'],
      env: { LOG_LEVEL: 'info', WORKERS: 4, DEBUG: false },
      health: { cmd: ['CMD', '/bin/healthcheck'], interval: '2s', retries: 2 },
      update: { delay: '500ms', monitor: '1m', order: 'stop-first' },
    });
    expect(env.ports).toEqual([
      { published: 18081, target: 8080, protocol: 'tcp' },
      { published: 18082, target: 9090, protocol: 'udp' },
    ]);
    expect(env.env).toEqual({ LOG_LEVEL: 'info', WORKERS: '4', DEBUG: 'false' });
    expect(healthCheck(env)).toEqual({ test: ['CMD', '/bin/healthcheck'], intervalMs: 2000, timeoutMs: 2000, retries: 2, startPeriodMs: 0 });
    expect(env.update).toMatchObject({ delayMs: 500, monitorMs: 60_000, order: 'stop-first' });
    // Docker's Test forms go to Swarm as written; timings left out get deploy's defaults.
    expect(healthCheck(spec({ service: 's', health: { cmd: ['CMD-SHELL', 'curl -f localhost'], timeout: '5s' } }))).toEqual({
      test: ['CMD-SHELL', 'curl -f localhost'],
      intervalMs: 2000,
      timeoutMs: 5000,
      retries: 2,
      startPeriodMs: 0,
    });
    expect(healthCheck(spec({ service: 's' }))).toBeUndefined();
  });

  it('names every problem with its path (the rules engine is the one validator)', () => {
    const paths = problems({
      staging: { service: 'web', ports: ['80'], update: { order: 'sideways', delay: 'soon' }, colour: 'blue' },
      production: { service: 'web', promote_from: 'qa', replicas: -1 },
    }).map((e) => e.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'environments.staging.ports[0]',
        'environments.staging.update.order',
        'environments.staging.update.delay',
        'environments.staging.colour',
        'environments.production.replicas',
      ]),
    );
    const second = problems({ staging: { service: 'web', ports: ['18080:8080'] }, production: { service: 'web', ports: ['18080:8080'], promote_from: 'qa' } });
    expect(second.map((e) => e.path).sort()).toEqual(['environments.production.ports[0]', 'environments.production.promote_from', 'environments.production.service']);
    expect(second.find((e) => e.path.endsWith('promote_from'))?.message).toMatch(/unknown environment "qa"/);
    expect(second.find((e) => e.path.endsWith('service'))?.message).toMatch(/already used by environment "staging"/);
    expect(second.find((e) => e.path.endsWith('ports[0]'))?.message).toMatch(/host port 18080\/tcp is already published by environment "staging"/);
  });

  it('reads the environments of a config exactly as the rules engine stores it', () => {
    const stored = validateConfig(
      doc({
        staging: { service: 'acme-web-staging', replicas: 2, ports: ['18080:8080'], env: { LOG_LEVEL: 'info' }, health: { cmd: ['CMD', '/bin/healthcheck'], interval: '2s', retries: 2 } },
        production: { service: 'acme-web', replicas: 4, ports: ['18081:8080'], promote_from: 'staging', protected: true },
      }),
    );
    const r = readRepoConfig('acme/web', JSON.parse(JSON.stringify(stored)));
    expect(r.image).toBe('localhost:5000/acme/web');
    expect(r.environments.production).toMatchObject({ service: 'acme-web', replicas: 4, promoteFrom: 'staging', protected: true, update: { delayMs: 1000, monitorMs: 5000 } });
    expect(healthCheck(r.environments.staging!)).toMatchObject({ test: ['CMD', '/bin/healthcheck'], intervalMs: 2000, retries: 2 });
  });

  it('answers 422 invalid_environments with the rules engine problems when a stored config no longer validates', () => {
    const read = () => readRepoConfig('acme/web', doc({ staging: { service: 'web', replicas: 'two' } }));
    expect(read).toThrow(DeployError);
    try {
      read();
    } catch (err) {
      expect(err).toMatchObject({ status: 422, code: 'invalid_environments' });
      expect((err as DeployError).errors.map((e) => e.path)).toEqual(['environments.staging.replicas']);
    }
  });
});


describe('Swarm service spec', () => {
  const req = (env: unknown) => ({
    repo: 'acme/web', environment: 'staging', config: spec(env), imageRef: `localhost:5000/acme/web@sha256:${'a'.repeat(64)}`,
    deploymentId: 'dep_1', revision: 7, since: 0,
  });

  it('runs the image by digest on its own network, labelled with its owner, at the environment\'s pace', () => {
    const s = serviceSpec(req({ service: 'acme-web', replicas: 3, ports: ['18081:8080'], env: { MODE: 'staging' } }), 'net-1');
    expect(s).toMatchObject({
      Name: 'acme-web',
      Labels: { 'io.slipway.repo': 'acme/web', 'io.slipway.environment': 'staging', 'io.slipway.deployment': 'dep_1', 'io.slipway.revision': '7' },
      Mode: { Replicated: { Replicas: 3 } },
      TaskTemplate: {
        ContainerSpec: { Image: `localhost:5000/acme/web@sha256:${'a'.repeat(64)}`, Env: ['MODE=staging'], Init: true },
        Networks: [{ Target: 'net-1', Aliases: ['acme-web'] }],
        Placement: {},
      },
    });
    // a rollback never gives up half way
    expect(s.RollbackConfig.FailureAction).toBe('pause');
    expect(s.UpdateConfig.Parallelism).toBe(s.RollbackConfig.Parallelism);
  });

  it('leaves ports to the entry proxy (dnsrr) by default, publishes them itself (vip, the routing mesh) when asked', () => {
    expect(serviceSpec(req({ service: 'acme-web', ports: ['18081:8080'] }), 'n').EndpointSpec).toEqual({ Mode: 'dnsrr' });
    const vip = serviceSpec(req({ service: 'acme-web', endpoint: 'mesh', ports: ['18081:8080', '5353:53/udp'] }), 'n').EndpointSpec;
    expect(vip).toEqual({
      Mode: 'vip',
      Ports: [
        { Protocol: 'tcp', TargetPort: 8080, PublishedPort: 18081, PublishMode: 'ingress' },
        { Protocol: 'udp', TargetPort: 53, PublishedPort: 5353, PublishMode: 'ingress' },
      ],
    });
  });

  it('turns the environment\'s health check into the Engine API\'s nanoseconds', () => {
    const s = serviceSpec(req({ service: 'acme-web', health: { cmd: ['CMD-SHELL', 'wget -q -O- http://127.0.0.1:8080/healthz'], interval: '2s', timeout: '1s', retries: 4 } }), 'n');
    expect(s.TaskTemplate.ContainerSpec.HealthCheck).toMatchObject({ Interval: 2_000_000_000, Timeout: 1_000_000_000, Retries: 4 });
  });
});

describe('entry proxy configuration', () => {
  it('resolves tasks.<service> through Docker DNS every 200 ms, one frontend per published TCP port', () => {
    const cfg = renderProxyConfig(spec({ service: 'acme-web', replicas: 4, ports: ['18081:8080', '18090:9000', '18091:9001/udp'] }));
    expect(cfg).toContain('nameserver dns 127.0.0.11:53');
    expect(cfg).toContain('hold valid 200ms');
    expect(cfg).toContain('timeout resolve 200ms');
    expect(cfg).toMatch(/frontend port_18081\n {2}bind :18081\n {2}default_backend app_8080/);
    expect(cfg).toMatch(/server-template task 16 tasks\.acme-web:8080/);
    expect(cfg).toMatch(/server-template task 16 tasks\.acme-web:9000/);
    expect(cfg).not.toContain('18091');
    expect(cfg).toMatch(/retry-on conn-failure empty-response response-timeout/);
    expect(cfg).toMatch(/default-server init-addr none resolvers docker .* check/);
  });
});
