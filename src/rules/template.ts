import type { Captures } from './match.js';
/**
 * Tag and build-arg templates: `{name}` variables from the table in spec/rules.md.
 * Parsed once into segments; rendering is a walk over them.
 */

export type SemverPart = 'version' | 'major' | 'minor' | 'patch' | 'prerelease';

export type Segment =
  | { kind: 'text'; text: string }
  | { kind: 'sourceref' }
  | { kind: 'group'; index: number }
  | { kind: 'named'; name: string }
  | { kind: 'sha'; length: number | null }
  | { kind: 'semver'; part: SemverPart };

export interface Template {
  source: string;
  segments: Segment[];
  /** No variables at all. */
  literal: boolean;
  /** Uses `{major}`/`{minor}`/`{patch}` but none of `{version}`, `{prerelease}`, `{sha…}`: a release-only tag. */
  releaseOnly: boolean;
  /** Needs to know whether the sourceref is a SemVer version: uses its variables, or is the literal `latest`. */
  needsVersion: boolean;
}

export type TemplateParse = { ok: true; template: Template } | { ok: false; message: string };

const SEMVER_PARTS = new Set<string>(['version', 'major', 'minor', 'patch', 'prerelease']);

/** Parses a template; the message says exactly what is wrong. Capture-group checks happen in validation. */
export function parseTemplate(source: string): TemplateParse {
  const segments: Segment[] = [];
  let text = '';
  let i = 0;
  while (i < source.length) {
    const ch = source[i]!;
    if (ch === '}') return { ok: false, message: 'a literal "}" is not allowed; variables are written {name}' };
    if (ch !== '{') {
      text += ch;
      i++;
      continue;
    }
    const close = source.indexOf('}', i + 1);
    const nextOpen = source.indexOf('{', i + 1);
    if (close < 0 || (nextOpen >= 0 && nextOpen < close)) {
      return { ok: false, message: 'a literal "{" is not allowed; variables are written {name}' };
    }
    const body = source.slice(i + 1, close);
    const seg = parseVariable(body);
    if (typeof seg === 'string') return { ok: false, message: seg };
    if (text) segments.push({ kind: 'text', text });
    text = '';
    segments.push(seg);
    i = close + 1;
  }
  if (text) segments.push({ kind: 'text', text });
  const vars = segments.filter((s) => s.kind !== 'text');
  const usesPart = (p: SemverPart) => vars.some((s) => s.kind === 'semver' && s.part === p);
  const releaseOnly =
    (usesPart('major') || usesPart('minor') || usesPart('patch')) &&
    !usesPart('version') &&
    !usesPart('prerelease') &&
    !vars.some((s) => s.kind === 'sha');
  const needsVersion = vars.some((s) => s.kind === 'semver') || source === 'latest';
  return { ok: true, template: { source, segments, literal: vars.length === 0, releaseOnly, needsVersion } };
}

function parseVariable(body: string): Segment | string {
  if (body === 'sourceref') return { kind: 'sourceref' };
  if (body === 'sha') return { kind: 'sha', length: null };
  if (SEMVER_PARTS.has(body)) return { kind: 'semver', part: body as SemverPart };
  const sha = /^sha:(\d+)$/.exec(body);
  if (sha) {
    const n = Number(sha[1]);
    if (n < 4 || n > 40) return `{${body}}: N must be between 4 and 40`;
    return { kind: 'sha', length: n };
  }
  const group = /^\\([1-9])$/.exec(body);
  if (group) return { kind: 'group', index: Number(group[1]) };
  const named = /^<([^<>{}]+)>$/.exec(body); // whether the regex has that group is checked in validation
  if (named) return { kind: 'named', name: named[1]! };
  return `unknown variable {${body}} (known: {sourceref}, {\\1}…{\\9}, {<name>}, {sha}, {sha:N}, {version}, {major}, {minor}, {patch}, {prerelease})`;
}

/** The values one event offers to templates. */
export interface TemplateValues {
  sourceref: string;
  sha: string;
  /** The regex match of the rule, when its match is a regular expression. */
  groups: Captures | null;
  semver: Record<SemverPart, string> | null;
}

/** Renders a template; null when a variable has no value for this event (see missingVariable). */
export function renderTemplate(t: Template, v: TemplateValues): string | null {
  let out = '';
  for (const s of t.segments) {
    switch (s.kind) {
      case 'text':
        out += s.text;
        break;
      case 'sourceref':
        out += v.sourceref;
        break;
      case 'sha':
        out += s.length === null ? v.sha : v.sha.slice(0, s.length);
        break;
      case 'group':
        if (!v.groups) return null;
        out += v.groups[s.index] ?? '';
        break;
      case 'named':
        if (!v.groups) return null;
        out += v.groups.groups?.[s.name] ?? '';
        break;
      case 'semver':
        if (!v.semver) return null;
        out += v.semver[s.part];
        break;
    }
  }
  return out;
}

/** The first variable of `t` that has no value for this event, as written (`{major}`). */
export function missingVariable(t: Template, v: TemplateValues): string {
  for (const s of t.segments) {
    if ((s.kind === 'group' || s.kind === 'named') && !v.groups) return s.kind === 'group' ? `{\\${s.index}}` : `{<${s.name}>}`;
    if (s.kind === 'semver' && !v.semver) return `{${s.part}}`;
  }
  return '';
}
