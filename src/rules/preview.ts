import { compileConfig, type CompiledConfig } from './compile.js';
import { childPath, RulesError, type Problem } from './errors.js';
import { evaluate } from './evaluate.js';
import { parseConfigText } from './parse.js';
import { isValidGitRefName } from './refname.js';
import type { ApplicationPreview, EnvironmentSpec, Preview, RepoConfig, ServiceSpec } from './types.js';

export const ZERO_SHA = '0'.repeat(40);
const SHA = /^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$/;

/** What `slipway rules preview` and `POST /api/rules/preview` ask about. */
export interface PreviewInput {
  ref: string;
  sha?: string;
  changed?: string[];
}

/** Checks the ref/sha/changed of a preview; problems are added with their paths. */
function checkInput(input: Record<string, unknown>, problems: Problem[]): { ref: string; sha: string; changed: string[] | null } {
  let ref = '';
  const rawRef = input.ref;
  if (rawRef === undefined) problems.push({ path: 'ref', message: 'required' });
  else if (typeof rawRef !== 'string' || rawRef === '') problems.push({ path: 'ref', message: 'must be a ref name like refs/heads/main or refs/tags/v1.2.3' });
  else {
    // A bare name is taken as a branch, as `git push origin main` pushes refs/heads/main.
    ref = rawRef.startsWith('refs/') ? rawRef : `refs/heads/${rawRef}`;
    if (!isValidGitRefName(ref)) problems.push({ path: 'ref', message: `${JSON.stringify(rawRef)} is not a valid git ref name` });
  }
  let sha = ZERO_SHA;
  if (input.sha !== undefined && input.sha !== null) {
    if (typeof input.sha !== 'string' || !SHA.test(input.sha)) problems.push({ path: 'sha', message: 'must be a full commit sha (40 hexadecimal characters)' });
    else sha = input.sha.toLowerCase();
  }
  let changed: string[] | null = null;
  if (input.changed !== undefined && input.changed !== null) {
    if (!Array.isArray(input.changed)) problems.push({ path: 'changed', message: 'must be a list of paths' });
    else {
      changed = [];
      input.changed.forEach((p: unknown, i) => {
        if (typeof p !== 'string' || p === '') problems.push({ path: `changed[${i}]`, message: 'must be a path from the repository root' });
        else changed!.push(p);
      });
    }
  }
  return { ref, sha, changed };
}

/**
 * The preview of one ref under a configuration (the CLI's `rules preview`). The default branch
 * is the config's `default_branch` (else main). Invalid ref/sha/changed: RulesError.
 */
export function previewRef(config: RepoConfig | CompiledConfig, input: PreviewInput): Preview {
  const compiled = isCompiled(config) ? config : compileConfig(config);
  const problems: Problem[] = [];
  const req = checkInput(input as unknown as Record<string, unknown>, problems);
  if (problems.length > 0) throw new RulesError(problems);
  return withApplications(compiled, evaluate(compiled, { ref: req.ref, sha: req.sha, changed: req.changed }));
}

/**
 * `POST /api/rules/preview` body `{config, ref, sha?, changed?}`: `config` is the document
 * (object) or its YAML/JSON text. Every problem is reported, config ones under `config.…`.
 */
export function previewRequest(body: unknown): Preview {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new RulesError([{ path: '', message: 'the body must be an object {config, ref, sha?, changed?}' }]);
  }
  const b = body as Record<string, unknown>;
  const problems: Problem[] = [];
  for (const k of Object.keys(b)) {
    if (!['config', 'ref', 'sha', 'changed'].includes(k)) problems.push({ path: k, message: 'unknown key (allowed: config, ref, sha, changed)' });
  }
  let compiled: CompiledConfig | null = null;
  if (b.config === undefined) problems.push({ path: 'config', message: 'required' });
  else {
    try {
      compiled = compileConfig(typeof b.config === 'string' ? parseConfigText(b.config) : b.config);
    } catch (err) {
      if (!(err instanceof RulesError)) throw err;
      for (const p of err.problems) problems.push({ path: p.path ? childPath('config', p.path) : 'config', message: p.message });
    }
  }
  const req = checkInput(b, problems);
  if (problems.length > 0 || !compiled) throw new RulesError(problems);
  return withApplications(compiled, evaluate(compiled, { ref: req.ref, sha: req.sha, changed: req.changed }));
}

/** The preview with the release plan of every environment of services (none: unchanged). */
function withApplications(compiled: CompiledConfig, preview: Preview): Preview {
  const fedRules = new Set(preview.builds.flatMap((b) => b.rules));
  const applications = Object.values(compiled.environments)
    .filter((env): env is EnvironmentSpec & { services: ServiceSpec[] } => env.services !== undefined)
    .map((env): ApplicationPreview => ({ environment: env.name, services: releasePlan(env.services, fedRules) }));
  return applications.length > 0 ? { ...preview, applications } : preview;
}

function releasePlan(services: ServiceSpec[], fedRules: Set<string>): ApplicationPreview['services'] {
  // `services` is in rollout order, so every depends_on has its step already.
  const steps = new Map<string, number>();
  return services.map((svc) => {
    const step = svc.role === 'job' ? 0 : 1 + Math.max(0, ...svc.dependsOn.map((d) => steps.get(d) ?? 0));
    steps.set(svc.name, step);
    return {
      name: svc.name,
      service: svc.spec.service,
      role: svc.role,
      from: 'rule' in svc.source ? `rule ${svc.source.rule}` : `${svc.source.image}@${svc.source.digest}`,
      replicas: svc.spec.replicas,
      ports: svc.spec.ports.map((p) => `${p.published}:${p.target}${p.protocol === 'udp' ? '/udp' : ''}`),
      dependsOn: svc.dependsOn,
      step,
      fed: 'rule' in svc.source && fedRules.has(svc.source.rule),
    };
  });
}

function isCompiled(c: RepoConfig | CompiledConfig): c is CompiledConfig {
  return (c as CompiledConfig).kind === 'compiled';
}
