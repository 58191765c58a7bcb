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

export type ServiceRole = 'web' | 'worker' | 'job';

/** One service of a multi-service environment, normalised (rules.md, "Services"). */
export interface ServiceConfig {
  /** Exactly one of `build` (a rule of this repository whose builds feed the service) and `image` (`repository@sha256:<hex>`). */
  build?: string;
  image?: string;
  role: ServiceRole;
  /** The container's command (Swarm's Args): exec form; a string was normalised to `["/bin/sh", "-c", string]`. */
  command?: string[];
  /** Merged over the environment's `env`. */
  env: Record<string, string>;
  /** Absent for a job (it runs once); else the environment's `replicas` when not given. */
  replicas?: number;
  ports: string[];
  health?: HealthConfig;
  /** Services updated before this one. */
  depends_on: string[];
}

export interface EnvironmentConfig {
  /** The Swarm service's name; with `services`, the prefix of every service's name (`<service>-<name>`). */
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
  /** The single service's command (exec form); with `services` each service has its own. */
  command?: string[];
  /** Present: the environment is an application of several services, released as one. */
  services?: Record<string, ServiceConfig>;
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
  /** The container's command (Swarm's ContainerSpec.Args); absent: the image's CMD. */
  command?: string[];
  /** The overlay network the service joins; absent: its own `<service>-net`. A release's services share their environment's. */
  network?: string;
  /** Present: the services of the environment, in rollout order (jobs first, then by `depends_on`, config order otherwise). */
  services?: ServiceSpec[];
}

/** Where a service's image comes from: this repository's builds of a rule, or an image pinned by digest. */
export type ServiceSource = { rule: string } | { image: string; digest: string };

export interface ServiceSpec {
  /** The name in the config (`web`, `worker`, `migrate`). */
  name: string;
  role: ServiceRole;
  source: ServiceSource;
  dependsOn: string[];
  /**
   * How the service runs, in the single-service form the Swarm target rolls out: `service` is the
   * Swarm name `<environment service>-<name>`, `network` the environment's shared network, `env`
   * merged, `replicas` 0 for a job; `name`, `update`, `endpoint`, `protected` are the environment's.
   */
  spec: EnvironmentSpec;
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
/** One environment of services as a release of it would roll out (the preview's `applications`). */
export interface ApplicationPreview {
  environment: string;
  services: {
    name: string;
    /** The Swarm service's name. */
    service: string;
    role: ServiceRole;
    /** `rule <name>` (its builds feed the service) or the pinned `repository@sha256:…`. */
    from: string;
    replicas: number;
    /** `published:target` through the entry proxy. */
    ports: string[];
    dependsOn: string[];
    /** When it updates: jobs at step 0, a service one step after the latest of its depends_on; one step's services update together. */
    step: number;
    /** One of this ref's builds feeds it: a release after that build updates it. */
    fed: boolean;
  }[];
}

export interface Preview {
  ref: string;
  /** null when the ref is neither a branch nor a tag (e.g. `refs/pull/1/head`) or invalid. */
  source: Source | null;
  sourceref: string;
  sha: string;
  builds: PlannedBuild[];
  skipped: SkippedRule[];
  warnings: string[];
  /** Present when an environment lists `services`: each such environment's release plan. */
  applications?: ApplicationPreview[];
}

export interface EvaluateOptions {
  /** A build asked for by hand: rules with `autobuild: false` may match too. */
  manual?: boolean;
  /** With `manual`, only this rule (unknown name: RulesError at path `rule`). */
  rule?: string;
}
