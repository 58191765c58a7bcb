import {
  compileConfig,
  evaluate,
  isValidGitRefName,
  parseConfigText,
  previewRequest,
  validateConfig,
  type CompiledConfig,
  type EvaluateOptions,
  type Preview,
  type RefEvent,
  type RepoConfig,
} from '../rules/index.js';

/**
 * What intake needs of src/rules, as one seam: read and validate a document, compile it once,
 * evaluate events against the compiled form, preview.
 */
export interface RulesEngine {
  /** YAML/JSON text → raw document; syntax problems throw RulesError. */
  parseText(text: string): unknown;
  /** Validates and normalises a config document; throws RulesError (422) with every problem. */
  normalise(doc: unknown): RepoConfig;
  compile(config: RepoConfig): CompiledConfig;
  evaluate(compiled: CompiledConfig, event: RefEvent, opts?: EvaluateOptions): Preview;
  isValidGitRefName(ref: string): boolean;
  /** `POST /api/rules/preview` / `slipway rules preview`: `{config, ref, sha?, changed?}` → Preview; throws RulesError. */
  preview(body: unknown): Preview;
}

export const rulesEngine: RulesEngine = {
  parseText: (text) => parseConfigText(text),
  normalise: validateConfig,
  compile: compileConfig,
  evaluate,
  isValidGitRefName,
  preview: previewRequest,
};

/** Compiled configs by version (sha256 of the stored document): compile once per process, not per delivery. */
export class CompiledCache {
  private readonly byVersion = new Map<string, CompiledConfig>();

  constructor(
    private readonly engine: RulesEngine = rulesEngine,
    private readonly max = 1000,
  ) {}

  get(version: string, config: RepoConfig): CompiledConfig {
    let hit = this.byVersion.get(version);
    if (!hit) {
      hit = this.engine.compile(config);
      if (this.byVersion.size >= this.max) this.byVersion.delete(this.byVersion.keys().next().value!);
      this.byVersion.set(version, hit);
    }
    return hit;
  }
}
