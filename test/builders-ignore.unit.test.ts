import { describe, expect, it } from 'vitest';
import { BuildError } from '../src/builders/index.js';
import { DockerIgnore } from '../src/builders/ignore.js';

/** `.dockerignore` read as the docker CLI reads it, on a linear-time engine. */
describe('.dockerignore patterns', () => {
  const table: [string, string, boolean][] = [
    ['*.env', 'a.env', true],
    ['*.env', 'dir/a.env', false],
    ['**/*.env', 'dir/sub/a.env', true],
    ['**/*.env', 'a.env', true],
    ['app/*.env', 'app/secret.env', true],
    ['app/*.env', 'app/deeper/secret.env', false],
    ['node_modules', 'node_modules/x/index.js', true],
    ['dist/', 'dist/server.js', true],
    ['/build', 'build/out.o', true],
    ['./docs/../tmp', 'tmp/x', true],
    ['**', 'anything/at/all', true],
    ['a?c', 'abc', true],
    ['a?c', 'a/c', false],
    ['[a-c]x', 'bx', true],
    ['file.txt', 'fileXtxt', false],
    ['cost$', 'cost$', true],
    ['docs/**/*.md', 'docs/a/b/c.md', true],
    ['docs/**/*.md', 'docs/c.md', true],
  ];
  it.each(table)('%s on %s → %s', (pattern, file, ignored) => {
    expect(DockerIgnore.parse(pattern).ignores(file)).toBe(ignored);
  });

  it('the last matching pattern wins, and ! brings files back', () => {
    const ig = DockerIgnore.parse('# docs stay out\n*.md\n!README.md\n\nsecret/\n!secret/public.txt\nsecret/public.txt\n');
    expect(ig.ignores('notes.md')).toBe(true);
    expect(ig.ignores('README.md')).toBe(false);
    expect(ig.ignores('secret/public.txt')).toBe(true);
    expect(ig.hasExclusions).toBe(true);
  });

  it('a pattern that backtracking engines take forever on is answered at once', () => {
    // `**/*a*a*a*a*a*b` against a 250-character name costs a backtracking matcher ~10^10 steps.
    const ig = DockerIgnore.parse('**/*a*a*a*a*a*b');
    expect(ig.ignores(`dir/${'a'.repeat(250)}`)).toBe(false);
    expect(ig.ignores(`dir/${'a'.repeat(250)}b`)).toBe(true);
  });

  it('refuses what it cannot read, naming the pattern', () => {
    expect(() => DockerIgnore.parse('ok\n[unclosed\n')).toThrow(BuildError);
    expect(() => DockerIgnore.parse('ok\n[unclosed\n')).toThrow(/\.dockerignore pattern "\[unclosed" is not valid/);
    expect(() => DockerIgnore.parse('x'.repeat(2000))).toThrow(/longer than 1024 characters/);
  });
});
