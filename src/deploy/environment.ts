import { z } from 'zod';

/**
 * One entry of a repository config's `environments` (../shared/spec/api.md), with the defaults
 * slipway applies. Durations are written `500ms`, `2s`, `1m` (or a number of seconds).
 */

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

export function parseDuration(value: string | number): number | null {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : null;
  const m = DURATION.exec(value.trim());
  if (!m) return null;
  return Math.round(Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]);
}

const Duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === null) {
    ctx.addIssue({ code: 'custom', message: `invalid duration ${JSON.stringify(v)} (use e.g. 500ms, 2s, 1m)` });
    return z.NEVER;
  }
  return ms;
});

// Docker service names: letters, digits, `-` and `_`, at most 63 characters, starting with a letter or digit.
const SERVICE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$/;

const Port = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const m = /^(\d{1,5}):(\d{1,5})(?:\/(tcp|udp))?$/.exec(String(v));
  const published = m ? Number(m[1]) : 0;
  const target = m ? Number(m[2]) : 0;
  if (!m || published < 1 || published > 65535 || target < 1 || target > 65535) {
    ctx.addIssue({ code: 'custom', message: `invalid port ${JSON.stringify(v)} (use "host:container", e.g. "18080:8080")` });
    return z.NEVER;
  }
  return { published, target, protocol: (m[3] ?? 'tcp') as 'tcp' | 'udp' };
});

const Health = z
  .object({
    cmd: z.union([z.string().min(1), z.array(z.string()).min(1)]),
    interval: Duration.optional(),
    timeout: Duration.optional(),
    retries: z.number().int().min(1).max(100).optional(),
    start_period: Duration.optional(),
  })
  .strict()
  .transform((h) => ({
    // A string is a shell command, as in a Dockerfile's `HEALTHCHECK CMD <string>`.
    test: typeof h.cmd === 'string' ? ['CMD-SHELL', h.cmd] : ['CMD', 'CMD-SHELL', 'NONE'].includes(h.cmd[0]!) ? h.cmd : ['CMD', ...h.cmd],
    intervalMs: h.interval ?? 2000,
    timeoutMs: h.timeout ?? 2000,
    retries: h.retries ?? 2,
    startPeriodMs: h.start_period ?? 0,
  }));

const Update = z
  .object({
    parallelism: z.number().int().min(0).default(1), // 0: all tasks at once, as in Swarm
    delay: Duration.default(1000),
    order: z.enum(['start-first', 'stop-first']).default('start-first'),
    failure_action: z.enum(['rollback', 'pause', 'continue']).default('rollback'),
    monitor: Duration.default(5000),
    max_failure_ratio: z.number().min(0).max(1).default(0),
  })
  .strict();

export const EnvironmentConfig = z
  .object({
    service: z.string().regex(SERVICE_NAME, 'must be a Docker service name (letters, digits, - and _, at most 63)'),
    replicas: z.number().int().min(0).max(100).default(1),
    ports: z.array(Port).default([]),
    endpoint: z.enum(['proxy', 'mesh']).default('proxy'),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'invalid variable name'), z.union([z.string(), z.number(), z.boolean()]))
      .default({})
      .transform((env) => Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]))),
    health: Health.optional(),
    update: Update.default(Update.parse({})),
    promote_from: z.string().min(1).optional(),
    protected: z.boolean().default(false),
  })
  .strict();
export type EnvironmentConfig = z.output<typeof EnvironmentConfig>;
export type EnvironmentInput = z.input<typeof EnvironmentConfig>;

/** Validates a whole `environments` map; every problem is named by its path (`environments.production.ports[0]`). */
export function parseEnvironments(raw: unknown): { ok: true; environments: Record<string, EnvironmentConfig> } | { ok: false; errors: { path: string; message: string }[] } {
  const schema = z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'environment names are lower-case letters, digits, - and _'), EnvironmentConfig);
  const parsed = schema.safeParse(raw ?? {});
  const errors: { path: string; message: string }[] = [];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) errors.push({ path: formatPath(['environments', ...issue.path]), message: issue.message });
    return { ok: false, errors };
  }
  const envs = parsed.data;
  const services = new Map<string, string>();
  const ports = new Map<number, string>();
  for (const [name, env] of Object.entries(envs)) {
    if (env.promote_from !== undefined) {
      if (env.promote_from === name) errors.push({ path: `environments.${name}.promote_from`, message: 'an environment cannot promote from itself' });
      else if (!envs[env.promote_from]) errors.push({ path: `environments.${name}.promote_from`, message: `unknown environment ${JSON.stringify(env.promote_from)}` });
    }
    const other = services.get(env.service);
    if (other) errors.push({ path: `environments.${name}.service`, message: `service ${env.service} is already used by environment ${other}` });
    services.set(env.service, name);
    env.ports.forEach((p, i) => {
      const taken = ports.get(p.published);
      if (taken) errors.push({ path: `environments.${name}.ports[${i}]`, message: `host port ${p.published} is already published by ${taken}` });
      ports.set(p.published, name);
    });
  }
  return errors.length ? { ok: false, errors } : { ok: true, environments: envs };
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)), '');
}

/** The entry proxy speaks HTTP over TCP; UDP ports need `endpoint: mesh`. */
export function proxiedPorts(config: EnvironmentConfig): EnvironmentConfig['ports'] {
  return config.ports.filter((p) => p.protocol === 'tcp');
}
