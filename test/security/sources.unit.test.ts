import { describe, expect, it } from 'vitest';
import { parseSourceAllow, sourceProblem } from '../../src/auth/index.js';
import { loadConfig } from '../../src/config.js';

/** SLIPWAY_SOURCE_ALLOW: which clone URLs a build may fetch, for which repository. */
describe('the source allow-list', () => {
  const policy = parseSourceAllow('github.com,ghe.acme.com,file:///srv/git/,http://127.0.0.1:8080/');
  const table: [string, string, boolean][] = [
    ['https://github.com/acme/web.git', 'acme/web', true],
    ['https://github.com/acme/web', 'acme/web', true],
    ['https://github.com/ACME/Web.git', 'acme/web', true],
    ['https://github.com/rival/app.git', 'acme/web', false],
    ['https://github.com/acme/web.git?x=1', 'acme/web', false],
    ['https://token@github.com/acme/web.git', 'acme/web', false],
    ['http://github.com/acme/web.git', 'acme/web', false],
    ['https://ghe.acme.com/acme/web.git', 'acme/web', true],
    ['file:///srv/git/web.git', 'acme/web', true],
    ['file:///etc', 'acme/web', false],
    ['http://127.0.0.1:8080/web.git', 'acme/web', true],
    ['http://127.0.0.1:6379/', 'acme/web', false],
    ['git@github.com:acme/web.git', 'acme/web', false],
  ];
  it.each(table)('%s for %s → %s', (url, repo, allowed) => {
    expect(sourceProblem(policy, url, repo) === null).toBe(allowed);
  });

  it('defaults to github.com, and a bad entry stops start-up naming it', () => {
    expect(loadConfig({}).sourceAllow).toEqual({ hosts: ['github.com'], prefixes: [] });
    expect(() => loadConfig({ SLIPWAY_SOURCE_ALLOW: 'github.com,not a host' })).toThrow(/SLIPWAY_SOURCE_ALLOW: "not a host" is neither a host/);
  });

  it('never shows credentials of a refused URL', () => {
    expect(sourceProblem(policy, 'https://user:secret@evil.example/x.git', 'acme/web')).toMatch(/^https:\/\/\*\*\*@evil\.example/);
  });
});
