import type { EnvironmentSpec } from '../rules/index.js';
import { proxiedPorts } from './environment.js';

/**
 * The entry proxy's HAProxy configuration for one environment. It resolves `tasks.<service>` through
 * Docker's embedded DNS every 200 ms and keeps no stale answer, so a task leaves the pool as soon as
 * Swarm takes it out of DNS (about 2 s before it stops); failed connections are retried on another task.
 */
export function renderProxyConfig(config: EnvironmentSpec): string {
  const slots = Math.max(16, config.replicas * 2 + 2);
  const lines = [
    'global',
    '  maxconn 8000',
    '  hard-stop-after 10s',
    '',
    'resolvers docker',
    '  nameserver dns 127.0.0.11:53',
    '  accepted_payload_size 8192',
    '  resolve_retries 3',
    '  timeout resolve 200ms',
    '  timeout retry 200ms',
    '  hold valid 200ms',
    '  hold other 200ms',
    '  hold refused 200ms',
    '  hold nx 200ms',
    '  hold timeout 200ms',
    '  hold obsolete 0s',
    '',
    'defaults',
    '  mode http',
    '  option http-server-close',
    '  timeout connect 1s',
    '  timeout client 60s',
    '  timeout server 60s',
    '  timeout http-request 10s',
    '  retries 3',
    '  option redispatch 1',
    '  retry-on conn-failure empty-response response-timeout',
    '  default-server init-addr none resolvers docker resolve-prefer ipv4 check inter 1s fall 2 rise 1',
    '',
  ];
  const ports = proxiedPorts(config);
  for (const port of ports) {
    lines.push(
      `frontend port_${port.published}`,
      `  bind :${port.published}`,
      `  default_backend app_${port.target}`,
      '',
    );
  }
  for (const target of new Set(ports.map((p) => p.target))) {
    lines.push(
      `backend app_${target}`,
      '  balance roundrobin',
      `  server-template task ${slots} tasks.${config.service}:${target}`,
      '',
    );
  }
  return lines.join('\n');
}
