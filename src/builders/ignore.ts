import { RE2JS } from 're2js';
import { BuildError } from './errors.js';

/** Patterns a `.dockerignore` may hold, and their length: bounds on what a repository makes slipway do. */
const MAX_PATTERNS = 10_000;
const MAX_PATTERN_LENGTH = 1024;

interface Pattern {
  exclusion: boolean;
  re: RE2JS;
}

/**
 * A `.dockerignore` as the docker CLI reads it (moby's patternmatcher): one pattern a line, `#`
 * comments, `!` exceptions, the last matching pattern wins, and a path is ignored when it or one of
 * its parent directories matches. Patterns become the same regular expressions moby builds, run on
 * RE2 (linear time), so no pattern and no file name in a repository can stall a worker.
 */
export class DockerIgnore {
  private constructor(private readonly patterns: readonly Pattern[]) {}

  /** Parses the file's text; a pattern RE2 cannot take fails the build with `context_invalid`. */
  static parse(text: string): DockerIgnore {
    const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    if (lines.length > MAX_PATTERNS) throw new BuildError('context_invalid', `.dockerignore has ${lines.length} patterns; at most ${MAX_PATTERNS} are read`);
    const patterns: Pattern[] = [];
    for (const [i, line] of lines.entries()) {
      if (line.length > MAX_PATTERN_LENGTH) throw new BuildError('context_invalid', `.dockerignore pattern ${i + 1} is longer than ${MAX_PATTERN_LENGTH} characters`);
      const exclusion = line.startsWith('!');
      const raw = clean(exclusion ? line.slice(1).trim() : line);
      if (!raw) continue;
      try {
        patterns.push({ exclusion, re: RE2JS.compile(toRegex(raw)) });
      } catch (err) {
        throw new BuildError('context_invalid', `.dockerignore pattern ${JSON.stringify(line)} is not valid: ${(err as Error).message}`);
      }
    }
    return new DockerIgnore(patterns);
  }

  get hasExclusions(): boolean {
    return this.patterns.some((p) => p.exclusion);
  }

  /** `file` is a `/`-separated path inside the context. */
  ignores(file: string): boolean {
    const parents: string[] = [];
    for (let at = file.indexOf('/'); at !== -1; at = file.indexOf('/', at + 1)) parents.push(file.slice(0, at));
    let matched = false;
    for (const p of this.patterns) {
      if (p.exclusion !== matched) continue; // cannot change the answer
      if (p.re.matches(file) || parents.some((dir) => p.re.matches(dir))) matched = !p.exclusion;
    }
    return matched;
  }
}

/** filepath.Clean, with `/` separators and a leading `/` dropped, as the CLI does. */
function clean(pattern: string): string {
  const parts: string[] = [];
  for (const part of pattern.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return parts.join('/');
}

/** moby's pattern → regexp: `**` any depth, `*` and `?` within one segment, `.` and `$` literal, `\\` escapes. */
function toRegex(pattern: string): string {
  let out = '^';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') i++;
        out += i + 1 >= pattern.length ? '.*' : '(.*/)?';
      } else {
        out += '[^/]*';
      }
    } else if (ch === '?') {
      out += '[^/]';
    } else if (ch === '.' || ch === '$') {
      out += `\\${ch}`;
    } else if (ch === '\\') {
      i++;
      out += i < pattern.length ? `\\${pattern[i]}` : '\\\\';
    } else {
      out += ch;
    }
  }
  return `${out}$`;
}
