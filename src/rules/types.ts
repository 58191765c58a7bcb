/**
 * The configuration document in its normalised JSON form (what the API stores and answers)
 * and the shapes of a preview (../shared/spec/rules.md).
 */

export type Source = 'branch' | 'tag';

export interface Rule {
  name: string;
  source: Source;
  /** Exact name, glob or `/regex/flags`; absent when only `semver` is given (then it acts as `*`). */
  match?: string;
  semver?: string;
  tags: string[];
  /** Normalised path inside the context (`Dockerfile`, `docker/Dockerfile`). */
  dockerfile: string;
  /** Normalised path inside the repository (`.`, `services/web`). */
  context: string;
  build_args: Record<string, string>;
  paths?: string[];
  autobuild: boolean;
  cache: boolean;
  /** The Dockerfile stage to build (`--target`); absent: the last stage. */
  target?: string;
  deploy?: string;
}

export type HealthCmd = string[];

export interface HealthConfig {
  cmd: HealthCmd;
  interval?: string;
  timeout?: string;
  retries?: number;
  start_period?: string;
}

export interface UpdateConfig {
  parallelism: number;
  delay: string;
  order: 'start-first' | 'stop-first';
  failure_action: 'rollback' | 'pause' | 'continue';
  monitor: string;
  max_failure_ratio: number;
}

export interface EnvironmentConfig {
  service: string;
  replicas: number;
  /** `"host:container"` or `"host:container/udp"`, as written. */
  ports: string[];
  endpoint: 'proxy' | 'mesh';
  env: Record<string, string>;
  health?: HealthConfig;
  update: UpdateConfig;
  promote_from?: string;
  protected: boolean;
}

export interface BuilderConfig {
  isolation: 'dedicated' | 'shared';
  timeout: string;
  cancel_superseded: boolean;
  concurrency: number;
  memory?: string;
  cpus?: number;
  /** `none`: RUN steps reach no network at all; `default`: what the operator's egress policy allows. */
  network: 'default' | 'none';
}

export interface SourceConfig {
  url?: string;
}

/** The normalised document: defaults filled, paths normalised, durations kept as written. */
export interface RepoConfig {
  repository: string;
  image: string;
  default_branch: string;
  builder: BuilderConfig;
  source?: SourceConfig;
  environments: Record<string, EnvironmentConfig>;
  /** Absent means the default rule (its match is the event's default branch, resolved per event). */
  rules?: Rule[];
}

/** Typed forms with durations in milliseconds, for the builders and the deployer. */
export interface PortSpec {
  published: number;
  target: number;
  protocol: 'tcp' | 'udp';
}

export interface EnvironmentSpec {
  name: string;
  service: string;
  replicas: number;
  ports: PortSpec[];
  endpoint: 'proxy' | 'mesh';
  env: Record<string, string>;
  health?: {
    cmd: HealthCmd;
    intervalMs?: number;
    timeoutMs?: number;
    retries?: number;
    startPeriodMs?: number;
  };
  update: {
    parallelism: number;
    delayMs: number;
    order: 'start-first' | 'stop-first';
    failureAction: 'rollback' | 'pause' | 'continue';
    monitorMs: number;
    maxFailureRatio: number;
  };
  promoteFrom?: string;
  protected: boolean;
}

export interface BuilderSpec {
  isolation: 'dedicated' | 'shared';
  timeoutMs: number;
  cancelSuperseded: boolean;
  concurrency: number;
  memoryBytes?: number;
  cpus?: number;
  network: 'default' | 'none';
}

/** What happened in git: a push of `ref` (full name) at `sha`. */
export interface RefEvent {
  ref: string;
  sha: string;
  /** Changed files (added ∪ modified ∪ removed over the commits); null/undefined/[] = not known. */
  changed?: string[] | null;
  /** The repository's default branch as the webhook says; wins over the config's. */
  defaultBranch?: string;
  deleted?: boolean;
}

export interface PlannedBuild {
  rules: string[];
  tags: string[];
  context: string;
  dockerfile: string;
  build_args: Record<string, string>;
  cache: boolean;
  /** Present when the rules name a Dockerfile stage. */
  target?: string;
  deploy: string[];
}

export interface SkippedRule {
  rule: string;
  reason: string;
}

/** The preview document, exactly as spec/rules.md shows it. */
export interface Preview {
  ref: string;
  /** null when the ref is neither a branch nor a tag (e.g. `refs/pull/1/head`) or invalid. */
  source: Source | null;
  sourceref: string;
  sha: string;
  builds: PlannedBuild[];
  skipped: SkippedRule[];
  warnings: string[];
}

export interface EvaluateOptions {
  /** A build asked for by hand: rules with `autobuild: false` may match too. */
  manual?: boolean;
  /** With `manual`, only this rule (unknown name: RulesError at path `rule`). */
  rule?: string;
}
