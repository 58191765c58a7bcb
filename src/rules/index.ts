/**
 * The build-rule language of ../shared/spec/rules.md: parse, validate, compile once, evaluate
 * ref events into planned builds. Pure functions, no I/O. Other folders import only this file.
 */
import { checkConfig } from './validate.js';
import { parseConfigText } from './parse.js';
import type { RepoConfig } from './types.js';

export { RulesError, type Problem } from './errors.js';
export { parseConfigText } from './parse.js';
export { compileConfig, type CompiledConfig } from './compile.js';
export { evaluate } from './evaluate.js';
export { previewRef, previewRequest, type PreviewInput } from './preview.js';
export { isValidGitRefName } from './refname.js';
export { sanitizeTag, DOCKER_TAG } from './tag.js';
export { environmentSpecs, builderSpec } from './specs.js';
export type * from './types.js';

/** Validates a raw document; throws RulesError with every problem; returns the normalised config. */
export function validateConfig(doc: unknown): RepoConfig {
  return checkConfig(doc).config;
}

/** Parses YAML/JSON text and validates it. */
export function loadConfig(text: string, opts: { filename?: string } = {}): RepoConfig {
  return validateConfig(parseConfigText(text, opts));
}
