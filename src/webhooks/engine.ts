import type { EvaluateOptions, Preview, RefEvent, RepoConfig } from '../rules/index.js';

/**
 * What intake needs of src/rules, as one seam: validate a document, compile it once,
 * evaluate events against the compiled form.
 */
export interface RulesEngine {
  /** Validates and normalises a config document; throws RulesError (422) with every problem. */
  normalise(doc: unknown): RepoConfig;
  compile(config: RepoConfig): CompiledRules;
  evaluate(compiled: CompiledRules, event: RefEvent, opts?: EvaluateOptions): Preview;
  isValidGitRefName(ref: string): boolean;
  /** `POST /api/rules/preview` / `slipway rules preview`: `{config, ref, sha?, changed?}` → Preview; throws RulesError. */
  preview(input: { config: unknown; ref: string; sha?: string; changed?: string[] }): Preview;
}

/** Opaque compiled form of one config; cached per process by config version. */
export type CompiledRules = { readonly config: RepoConfig };

/** Compiled configs by version (sha256 of the stored document): compile once per process, not per delivery. */
export class CompiledCache {
  private readonly byVersion = new Map<string, CompiledRules>();

  constructor(
    private readonly engine: RulesEngine,
    private readonly max = 1000,
  ) {}

  get(version: string, config: RepoConfig): CompiledRules {
    let hit = this.byVersion.get(version);
    if (!hit) {
      hit = this.engine.compile(config);
      if (this.byVersion.size >= this.max) this.byVersion.delete(this.byVersion.keys().next().value!);
      this.byVersion.set(version, hit);
    }
    return hit;
  }
}
