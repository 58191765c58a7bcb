/** One problem in a configuration or a request: where (`rules[1].match`) and what. */
export interface Problem {
  path: string;
  message: string;
}

/**
 * Every problem found in a configuration (or in a preview request), reported together so a
 * person can fix them all in one go. Maps to HTTP 422 in the API and exit code 2 in the CLI.
 */
export class RulesError extends Error {
  readonly code = 'invalid_config';
  readonly status = 422;
  readonly problems: Problem[];

  constructor(problems: Problem[], message?: string) {
    super(message ?? RulesError.describe(problems));
    this.name = 'RulesError';
    this.problems = problems;
  }

  /** `path: message` lines, the form the CLI prints. */
  static describe(problems: readonly Problem[]): string {
    return problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('\n');
  }
}

/** Appends a key to a field path the way messages name it: `rules[0].tags`, `environments.staging`. */
export function childPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  return base ? `${base}.${key}` : key;
}
