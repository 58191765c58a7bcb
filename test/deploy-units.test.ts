import { describe, expect, it } from 'vitest';
import { denormalise, EnvironmentConfig, parseEnvironments, renderProxyConfig } from '../src/deploy/index.js';
import { validateConfig } from '../src/rules/index.js';

describe('environments config', () => {
  it('fills the documented defaults', () => {
    const env = EnvironmentConfig.parse({ service: 'acme-web-staging' });
    expect(env).toEqual({
      service: 'acme-web-staging',
      replicas: 1,
      ports: [],
      endpoint: 'proxy',
      env: {},
      update: { parallelism: 1, delay: 1000, order: 'start-first', failure_action: 'rollback', monitor: 5000, max_failure_ratio: 0 },
      protected: false,
    });
  });

  it('parses ports, durations, health commands and env values', () => {
    const env = EnvironmentConfig.parse({
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
    expect(env.health).toEqual({ test: ['CMD', '/bin/healthcheck'], intervalMs: 2000, timeoutMs: 2000, retries: 2, startPeriodMs: 0 });
    expect(env.update).toMatchObject({ delay: 500, monitor: 60_000, order: 'stop-first' });
    expect(EnvironmentConfig.parse({ service: 's', health: { cmd: 'curl -f localhost' } }).health?.test).toEqual(['CMD-SHELL', 'curl -f localhost']);
  });

  it('names every problem with its path', () => {
    const r = parseEnvironments({
      staging: { service: 'web', ports: ['80'], update: { order: 'sideways', delay: 'soon' }, colour: 'blue' },
      production: { service: 'web', promote_from: 'qa', replicas: -1 },
    });
    expect(r.ok).toBe(false);
    const paths = r.ok ? [] : r.errors.map((e) => e.path).sort();
    expect(paths).toEqual(
      expect.arrayContaining([
        'environments.staging.ports[0]',
        'environments.staging.update.order',
        'environments.staging.update.delay',
        'environments.staging',
        'environments.production.replicas',
      ]),
    );
    const second = parseEnvironments({ staging: { service: 'web', ports: ['18080:8080'] }, production: { service: 'web', ports: ['18080:8080'], promote_from: 'qa' } });
    expect(second.ok ? [] : second.errors).toEqual([
      { path: 'environments.production.promote_from', message: 'unknown environment "qa"' },
      { path: 'environments.production.service', message: 'service web is already used by environment staging' },
      { path: 'environments.production.ports[0]', message: 'host port 18080 is already published by staging' },
    ]);
  });

  it('reads the environments of a config exactly as the rules engine stores it', () => {
    const stored = validateConfig({
      repository: 'acme/web',
      image: 'localhost:5000/acme/web',
      environments: {
        staging: { service: 'acme-web-staging', replicas: 2, ports: ['18080:8080'], env: { LOG_LEVEL: 'info' }, health: { cmd: ['CMD', '/bin/healthcheck'], interval: '2s', retries: 2 } },
        production: { service: 'acme-web', replicas: 4, ports: ['18081:8080'], promote_from: 'staging', protected: true },
      },
    });
    const r = parseEnvironments(JSON.parse(JSON.stringify(stored.environments)));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.environments.production).toMatchObject({ service: 'acme-web', replicas: 4, promote_from: 'staging', protected: true, update: { delay: 1000, monitor: 5000 } });
    expect(r.environments.staging!.health).toMatchObject({ test: ['CMD', '/bin/healthcheck'], intervalMs: 2000, retries: 2 });
  });

  it('keeps a frozen rollout plan identical through storage', () => {
    const env = EnvironmentConfig.parse({ service: 'x', replicas: 3, ports: ['18080:8080'], health: { cmd: 'true', start_period: '3s' }, update: { parallelism: 0, delay: '250ms' }, promote_from: 'staging', protected: true });
    expect(EnvironmentConfig.parse(denormalise(env))).toEqual(env);
  });
});

describe('entry proxy configuration', () => {
  it('resolves tasks.<service> through Docker DNS every 200 ms, one frontend per published TCP port', () => {
    const cfg = renderProxyConfig(EnvironmentConfig.parse({ service: 'acme-web', replicas: 4, ports: ['18081:8080', '18090:9000', '18091:9001/udp'] }));
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
