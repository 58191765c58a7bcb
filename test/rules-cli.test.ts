import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// The real binary, as a user runs it: node bin/slipway.js …
const root = resolve(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'slipway-rules-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function slipway(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(root, 'bin/slipway.js'), ...args], { cwd: root, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('slipway rules preview', () => {
  it('prints the preview JSON of a shipped example and exits 0', () => {
    const r = slipway('rules', 'preview', '--config', 'examples/semver-release.yaml', '--ref', 'refs/tags/v1.2.3', '--sha', 'ABCDEF0123456789abcdef0123456789abcdef01');
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    const p = JSON.parse(r.stdout);
    expect(p).toMatchObject({ ref: 'refs/tags/v1.2.3', source: 'tag', sourceref: 'v1.2.3', sha: 'abcdef0123456789abcdef0123456789abcdef01', warnings: [] });
    expect(p.builds).toEqual([
      {
        rules: ['releases'],
        tags: ['1.2.3', '1.2', '1', 'latest'],
        context: '.',
        dockerfile: 'Dockerfile',
        build_args: { GIT_SHA: 'abcdef0123456789abcdef0123456789abcdef01', VERSION: '1.2.3' },
        cache: false,
        deploy: [],
      },
    ]);
    expect(p.skipped).toEqual([
      { rule: 'edge', reason: 'source is branch, ref is a tag' },
      { rule: 'pre-releases', reason: 'no match' },
    ]);
  });

  it('--sha defaults to forty zeros and --changed repeats once per path', () => {
    const r = slipway('rules', 'preview', '--config', 'examples/monorepo.yaml', '--ref', 'refs/heads/main', '--changed', 'services/web/index.html', '--changed', 'services/api/README.md');
    expect(r.status).toBe(0);
    const p = JSON.parse(r.stdout);
    expect(p.sha).toBe('0'.repeat(40));
    expect(p.builds.map((b: { rules: string[] }) => b.rules)).toEqual([['web']]);
    expect(p.builds[0].tags).toEqual(['web-edge', 'web-0000000']);
    expect(p.builds[0].deploy).toEqual(['staging']);
    expect(p.skipped).toEqual([
      { rule: 'api', reason: 'paths: no changed file matches' },
      { rule: 'web-branches', reason: 'no match' },
    ]);
  });

  it('without --changed the path filters pass', () => {
    const p = JSON.parse(slipway('rules', 'preview', '--config', 'examples/monorepo.yaml', '--ref', 'refs/heads/main').stdout);
    expect(p.builds.map((b: { rules: string[] }) => b.rules)).toEqual([['web'], ['api']]);
  });

  it('regex capture groups (Docker Hub style)', () => {
    const r = slipway('rules', 'preview', '--config', 'examples/dockerhub-regex.yaml', '--ref', 'refs/tags/v3.0.1');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).builds[0].tags).toEqual(['3.0.1', '3.0']);
  });

  it('the default branch is the config default_branch, else main', () => {
    const withDefault = file('d.yaml', 'repository: acme/web\nimage: acme/web\ndefault_branch: trunk\n');
    const plain = file('p.json', '{"repository": "acme/web", "image": "acme/web"}');
    expect(JSON.parse(slipway('rules', 'preview', '--config', withDefault, '--ref', 'refs/heads/trunk').stdout).builds[0].tags).toEqual(['latest']);
    expect(JSON.parse(slipway('rules', 'preview', '--config', withDefault, '--ref', 'refs/heads/main').stdout).builds).toEqual([]);
    expect(JSON.parse(slipway('rules', 'preview', '--config', plain, '--ref', 'refs/heads/main').stdout).builds[0].rules).toEqual(['default']);
  });

  it('an invalid config: problems on stderr naming the file and field path, nothing on stdout, exit 2', () => {
    const bad = file('bad.yaml', 'repository: acme/web\nimage: acme/web:1.0\nrules:\n  - name: a\n    source: branch\n    match: main\n  - name: b\n    source: tag\n    match: "/(/"\n    tags: [x]\n');
    const r = slipway('rules', 'preview', '--config', bad, '--ref', 'refs/heads/main');
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${bad}: image:`);
    expect(r.stderr).toContain(`${bad}: rules[0].tags: required`);
    expect(r.stderr).toContain(`${bad}: rules[1].match: invalid regular expression`);
  });

  it('a missing file: a clear message, exit 2', () => {
    const r = slipway('rules', 'preview', '--config', join(dir, 'nope.yaml'), '--ref', 'refs/heads/main');
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('nope.yaml');
    expect(r.stderr).toContain('no such file');
  });

  it('an invalid ref or sha: exit 2', () => {
    const a = slipway('rules', 'preview', '--config', 'examples/monorepo.yaml', '--ref', 'refs/heads/a..b');
    expect(a.status).toBe(2);
    expect(a.stderr).toContain('ref');
    const b = slipway('rules', 'preview', '--config', 'examples/monorepo.yaml', '--ref', 'refs/heads/main', '--sha', 'xyz');
    expect(b.status).toBe(2);
    expect(b.stderr).toContain('sha');
  });

  it('usage errors exit 2: missing --ref, unknown option, unknown command', () => {
    for (const args of [
      ['rules', 'preview', '--config', 'examples/monorepo.yaml'],
      ['rules', 'preview', '--config', 'examples/monorepo.yaml', '--ref', 'refs/heads/main', '--bogus'],
      ['rules', 'bogus'],
    ]) {
      const r = slipway(...args);
      expect(r.status).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).not.toBe('');
    }
  });

  it('--help on every command, exit 0', () => {
    for (const args of [['rules', '--help'], ['rules', 'check', '--help'], ['rules', 'preview', '--help']]) {
      const r = slipway(...args);
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('Usage: slipway rules');
    }
    expect(slipway('rules', 'preview', '--help').stdout).toContain('--changed');
  });
});

describe('slipway rules check', () => {
  it.each(['examples/monorepo.yaml', 'examples/semver-release.yaml', 'examples/dockerhub-regex.yaml'])('%s is valid: prints the normalised config, exit 0', (path) => {
    const r = slipway('rules', 'check', '--config', path);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    const config = JSON.parse(r.stdout);
    expect(config.builder).toMatchObject({ isolation: 'dedicated', timeout: '30m' });
    expect(config.rules.length).toBeGreaterThan(0);
  });

  it('an invalid file: every problem, exit 2', () => {
    const bad = file('bad.json', JSON.stringify({ repository: 'acme/web', image: 'acme/web', rules: [{ name: 'a', source: 'branch', match: 'x', tags: ['{nope}'], extra: 1 }] }));
    const r = slipway('rules', 'check', '--config', bad);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${bad}: rules[0].extra: unknown key`);
    expect(r.stderr).toContain(`${bad}: rules[0].tags[0]: unknown variable {nope}`);
  });

  it('a YAML syntax error: exit 2 with the line', () => {
    const r = slipway('rules', 'check', '--config', file('syntax.yaml', 'repository: [\n'));
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('invalid YAML');
  });
});
