import { describe, expect, it } from 'vitest';
import {
  builderSpec,
  environmentSpecs,
  loadConfig,
  parseConfigText,
  RulesError,
  validateConfig,
  type Problem,
} from '../src/rules/index.js';

const base = { repository: 'acme/web', image: 'localhost:5000/acme/web' };
const rule = { name: 'r', source: 'branch', match: 'main', tags: ['latest'] };

function problems(doc: unknown): Problem[] {
  try {
    validateConfig(doc);
  } catch (err) {
    if (err instanceof RulesError) return err.problems;
    throw err;
  }
  return [];
}
const withRule = (fields: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ ...base, ...extra, rules: [{ ...rule, ...fields }] });
const withEnv = (env: Record<string, unknown>) => ({ ...base, environments: { staging: { service: 'web-staging', ...env } } });
const omit = (o: Record<string, unknown>, k: string) => Object.fromEntries(Object.entries(o).filter(([key]) => key !== k));

describe('every invalid case names its place', () => {
  // [what, document, path, message fragment]
  const table: [string, unknown, string, string][] = [
    ['not a mapping', ['a'], '', 'mapping'],
    ['missing repository', omit(base, 'repository'), 'repository', 'required'],
    ['missing image', omit(base, 'image'), 'image', 'required'],
    ['repository not owner/name', { ...base, repository: 'acme' }, 'repository', 'owner/name'],
    ['image with a tag', { ...base, image: 'acme/web:1.0' }, 'image', 'tag'],
    ['image with registry and tag', { ...base, image: 'localhost:5000/acme/web:1.0' }, 'image', 'tag'],
    ['image with a digest', { ...base, image: `acme/web@sha256:${'a'.repeat(64)}` }, 'image', 'digest'],
    ['image upper case', { ...base, image: 'acme/Web' }, 'image', 'not a valid image reference'],
    ['image with spaces', { ...base, image: 'acme/my web' }, 'image', 'not a valid image reference'],
    ['invalid default_branch', { ...base, default_branch: 'a..b' }, 'default_branch', 'branch name'],
    ['unknown top-level key', { ...base, tagz: [] }, 'tagz', 'unknown key'],
    ['rules not a list', { ...base, rules: { a: 1 } }, 'rules', 'list'],
    ['rules null', { ...base, rules: null }, 'rules', 'list'],
    ['rule not a mapping', { ...base, rules: ['x'] }, 'rules[0]', 'mapping'],
    ['unknown rule key', withRule({ tag: 'x' }), 'rules[0].tag', 'unknown key'],
    ['missing name', withRule({ name: undefined }), 'rules[0].name', 'required'],
    ['empty name', withRule({ name: '' }), 'rules[0].name', 'empty'],
    ['missing source', withRule({ source: undefined }), 'rules[0].source', 'required'],
    ['bad source', withRule({ source: 'pull_request' }), 'rules[0].source', 'branch, tag'],
    ['missing tags', withRule({ tags: undefined }), 'rules[0].tags', 'required'],
    ['empty tags', withRule({ tags: [] }), 'rules[0].tags', 'empty'],
    ['tag not a string', withRule({ tags: [1.0] }), 'rules[0].tags[0]', 'string'],
    ['missing match and semver', withRule({ match: undefined }), 'rules[0].match', 'required'],
    ['unknown variable', withRule({ tags: ['ok', '{branch}'] }), 'rules[0].tags[1]', 'unknown variable {branch}'],
    ['variable case', withRule({ tags: ['{SHA}'] }), 'rules[0].tags[0]', 'unknown variable'],
    ['\\0 is not a group', withRule({ match: '/(a)/', tags: ['{\\0}'] }), 'rules[0].tags[0]', 'unknown variable'],
    ['\\10 is not a group', withRule({ match: '/(a)/', tags: ['{\\10}'] }), 'rules[0].tags[0]', 'unknown variable'],
    ['literal {', withRule({ tags: ['a{b'] }), 'rules[0].tags[0]', '{'],
    ['literal }', withRule({ tags: ['a}b'] }), 'rules[0].tags[0]', '}'],
    ['nested {', withRule({ tags: ['{a{sha}}'] }), 'rules[0].tags[0]', '{'],
    ['empty variable', withRule({ tags: ['x{}'] }), 'rules[0].tags[0]', 'unknown variable'],
    ['group without regex (exact)', withRule({ tags: ['{\\1}'] }), 'rules[0].tags[0]', 'regular expression'],
    ['group without regex (glob)', withRule({ match: 'v*', tags: ['{\\1}'] }), 'rules[0].tags[0]', 'regular expression'],
    ['named group without regex', withRule({ match: '*', tags: ['{<v>}'] }), 'rules[0].tags[0]', 'regular expression'],
    ['group on semver-only rule', withRule({ source: 'tag', match: undefined, semver: '*', tags: ['{\\1}'] }), 'rules[0].tags[0]', 'regular expression'],
    ['group the regex lacks', withRule({ match: '/^v(\\d+)$/', tags: ['{\\2}'] }), 'rules[0].tags[0]', '1 capture group'],
    ['named group the regex lacks', withRule({ match: '/^v(?<ver>.*)$/', tags: ['{<version>}'] }), 'rules[0].tags[0]', 'no group named'],
    ['group in build_args without regex', withRule({ build_args: { V: '{\\1}' } }), 'rules[0].build_args.V', 'regular expression'],
    ['unknown variable in build_args', withRule({ build_args: { V: '{nope}' } }), 'rules[0].build_args.V', 'unknown variable'],
    ['invalid regex', withRule({ match: '/(unclosed/' }), 'rules[0].match', 'invalid regular expression'],
    ['regex without closing slash', withRule({ match: '/abc' }), 'rules[0].match', 'invalid regular expression'],
    // Rule regexes run on RE2 (linear time): what it cannot express is refused when the config is checked.
    ['regex lookahead', withRule({ match: '/^(?!release-)/' }), 'rules[0].match', 'lookahead, lookbehind and backreferences are not available'],
    ['regex backreference', withRule({ match: '/^(a)\\1$/' }), 'rules[0].match', 'invalid escape sequence'],
    ['glob braces that expand too far', withRule({ match: `release-${'{a,b}'.repeat(9)}` }), 'rules[0].match', 'expand to more than 256 patterns'],
    ['glob range that expands too far', withRule({ match: 'v{1..100000}' }), 'rules[0].match', 'expand to more than 256 patterns'],
    ['path glob too long', withRule({ paths: [`src/${'a'.repeat(600)}/**`] }), 'rules[0].paths[0]', 'longer than 512 characters'],
    ['newline in context', withRule({ context: 'a\nevent: end' }), 'rules[0].context', 'control characters'],
    ['newline in dockerfile', withRule({ dockerfile: 'Dockerfile\r\ndata: x' }), 'rules[0].dockerfile', 'control characters'],
    ['newline in a rule name', withRule({ name: 'r\nevent: end' }), 'rules[0].name', 'control characters'],
    ['regex non-ASCII group name', withRule({ match: '/^(?<größe>.+)$/' }), 'rules[0].match', 'invalid named capture'],
    ['regex flag g', withRule({ match: '/a/g' }), 'rules[0].match', 'flags'],
    ['regex flag y', withRule({ match: '/a/y' }), 'rules[0].match', 'flags'],
    ['regex repeated flag', withRule({ match: '/a/ii' }), 'rules[0].match', 'flags'],
    ['regex flags with text', withRule({ match: '/a/b/c' }), 'rules[0].match', 'flags'],
    ['semver on a branch rule', withRule({ match: undefined, semver: '>=1.0.0' }), 'rules[0].semver', 'tag rules'],
    ['invalid semver range', withRule({ source: 'tag', match: undefined, semver: 'not a range' }), 'rules[0].semver', 'invalid semver range'],
    ['invalid literal tag', withRule({ tags: ['my tag'] }), 'rules[0].tags[0]', 'not a valid Docker tag'],
    ['literal tag starting with -', withRule({ tags: ['-x'] }), 'rules[0].tags[0]', 'not a valid Docker tag'],
    ['literal tag starting with .', withRule({ tags: ['.x'] }), 'rules[0].tags[0]', 'not a valid Docker tag'],
    ['literal tag of 129', withRule({ tags: ['a'.repeat(129)] }), 'rules[0].tags[0]', 'not a valid Docker tag'],
    ['literal tag with /', withRule({ tags: ['a/b'] }), 'rules[0].tags[0]', 'not a valid Docker tag'],
    ['sha:3', withRule({ tags: ['{sha:3}'] }), 'rules[0].tags[0]', '4 and 40'],
    ['sha:41', withRule({ tags: ['{sha:41}'] }), 'rules[0].tags[0]', '4 and 40'],
    ['sha:0', withRule({ tags: ['{sha:0}'] }), 'rules[0].tags[0]', '4 and 40'],
    ['sha:x', withRule({ tags: ['{sha:x}'] }), 'rules[0].tags[0]', 'unknown variable'],
    ['absolute context', withRule({ context: '/srv/app' }), 'rules[0].context', 'absolute'],
    ['context leaving the repository', withRule({ context: 'a/../../b' }), 'rules[0].context', 'leaves the repository'],
    ['context ..', withRule({ context: '..' }), 'rules[0].context', 'leaves the repository'],
    ['absolute dockerfile', withRule({ dockerfile: '/Dockerfile' }), 'rules[0].dockerfile', 'absolute'],
    ['dockerfile leaving the context', withRule({ context: 'svc', dockerfile: 'a/../../Dockerfile' }), 'rules[0].dockerfile', 'leaves the context'],
    ['dockerfile that is the context', withRule({ dockerfile: './' }), 'rules[0].dockerfile', 'file'],
    ['deploy to a missing environment', withRule({ deploy: 'staging' }), 'rules[0].deploy', 'unknown environment'],
    ['autobuild not a boolean', withRule({ autobuild: 'no' }), 'rules[0].autobuild', 'true or false'],
    ['cache not a boolean', withRule({ cache: 1 }), 'rules[0].cache', 'true or false'],
    ['target not a stage name', withRule({ target: '1st stage' }), 'rules[0].target', 'stage name'],
    ['paths not a list', withRule({ paths: 'src/**' }), 'rules[0].paths', 'list'],
    ['paths empty', withRule({ paths: [] }), 'rules[0].paths', 'empty'],
    ['paths entry empty', withRule({ paths: ['a/**', ''] }), 'rules[0].paths[1]', 'glob'],
    ['paths entry bare !', withRule({ paths: ['!'] }), 'rules[0].paths[0]', 'invalid glob'],
    ['build_args not a mapping', withRule({ build_args: ['A=1'] }), 'rules[0].build_args', 'mapping'],
    ['build arg with a bad name', withRule({ build_args: { 'A B': '1' } }), 'rules[0].build_args.A B', 'invalid name'],
    ['build arg not a scalar', withRule({ build_args: { A: { b: 1 } } }), 'rules[0].build_args.A', 'string'],
    // environments
    ['environments not a mapping', { ...base, environments: ['staging'] }, 'environments', 'mapping'],
    ['environment not a mapping', { ...base, environments: { staging: 'x' } }, 'environments.staging', 'mapping'],
    ['bad environment name', { ...base, environments: { 'Stag ing': { service: 'x' } } }, 'environments.Stag ing', 'environment name'],
    ['missing service', withEnv({ service: undefined }), 'environments.staging.service', 'required'],
    ['bad service name', withEnv({ service: 'web staging' }), 'environments.staging.service', 'service name'],
    ['service name too long', withEnv({ service: 'a'.repeat(64) }), 'environments.staging.service', 'service name'],
    ['service name ending with -', withEnv({ service: 'web-' }), 'environments.staging.service', 'service name'],
    ['unknown environment key', withEnv({ image: 'x' }), 'environments.staging.image', 'unknown key'],
    ['negative replicas', withEnv({ replicas: -1 }), 'environments.staging.replicas', 'whole number'],
    ['fractional replicas', withEnv({ replicas: 1.5 }), 'environments.staging.replicas', 'whole number'],
    ['ports not a list', withEnv({ ports: '80:80' }), 'environments.staging.ports', 'list'],
    ['port without container', withEnv({ ports: ['8080'] }), 'environments.staging.ports[0]', 'host:container'],
    ['port 0', withEnv({ ports: ['0:80'] }), 'environments.staging.ports[0]', '1-65535'],
    ['port 65536', withEnv({ ports: ['65536:80'] }), 'environments.staging.ports[0]', '1-65535'],
    ['port protocol sctp', withEnv({ ports: ['80:80/sctp'] }), 'environments.staging.ports[0]', 'tcp'],
    ['port as a number', withEnv({ ports: [8080] }), 'environments.staging.ports[0]', 'host:container'],
    ['bad endpoint', withEnv({ endpoint: 'vip' }), 'environments.staging.endpoint', 'proxy, mesh'],
    ['env not a mapping', withEnv({ env: ['A=1'] }), 'environments.staging.env', 'mapping'],
    ['env with a bad name', withEnv({ env: { '1A': 'x' } }), 'environments.staging.env.1A', 'invalid name'],
    ['health without cmd', withEnv({ health: { interval: '2s' } }), 'environments.staging.health.cmd', 'required'],
    ['health cmd a string', withEnv({ health: { cmd: 'curl x' } }), 'environments.staging.health.cmd', 'CMD'],
    ['health cmd without CMD', withEnv({ health: { cmd: ['curl', 'x'] } }), 'environments.staging.health.cmd', 'CMD'],
    ['health CMD alone', withEnv({ health: { cmd: ['CMD'] } }), 'environments.staging.health.cmd', 'CMD'],
    ['health CMD-SHELL with two', withEnv({ health: { cmd: ['CMD-SHELL', 'a', 'b'] } }), 'environments.staging.health.cmd', 'CMD-SHELL'],
    ['health NONE with args', withEnv({ health: { cmd: ['NONE', 'x'] } }), 'environments.staging.health.cmd', 'NONE'],
    ['health bad interval', withEnv({ health: { cmd: ['NONE'], interval: '2 seconds' } }), 'environments.staging.health.interval', 'duration'],
    ['health number interval', withEnv({ health: { cmd: ['NONE'], interval: 2 } }), 'environments.staging.health.interval', 'duration'],
    ['health bad retries', withEnv({ health: { cmd: ['NONE'], retries: 0 } }), 'environments.staging.health.retries', 'whole number'],
    ['health unknown key', withEnv({ health: { cmd: ['NONE'], every: '2s' } }), 'environments.staging.health.every', 'unknown key'],
    ['update negative parallelism', withEnv({ update: { parallelism: -1 } }), 'environments.staging.update.parallelism', 'whole number'],
    ['update bad delay', withEnv({ update: { delay: 'soon' } }), 'environments.staging.update.delay', 'duration'],
    ['update bad order', withEnv({ update: { order: 'random' } }), 'environments.staging.update.order', 'start-first'],
    ['update bad failure_action', withEnv({ update: { failure_action: 'panic' } }), 'environments.staging.update.failure_action', 'rollback'],
    ['update bad monitor', withEnv({ update: { monitor: '5' } }), 'environments.staging.update.monitor', 'duration'],
    ['update ratio above 1', withEnv({ update: { max_failure_ratio: 1.5 } }), 'environments.staging.update.max_failure_ratio', '0 to 1'],
    ['update unknown key', withEnv({ update: { speed: 1 } }), 'environments.staging.update.speed', 'unknown key'],
    ['promote_from itself', withEnv({ promote_from: 'staging' }), 'environments.staging.promote_from', 'itself'],
    ['promote_from unknown', withEnv({ promote_from: 'dev' }), 'environments.staging.promote_from', 'unknown environment'],
    ['protected not a boolean', withEnv({ protected: 'yes' }), 'environments.staging.protected', 'true or false'],
    // builder and source
    ['builder not a mapping', { ...base, builder: 'dedicated' }, 'builder', 'mapping'],
    ['builder unknown key', { ...base, builder: { engine: 'x' } }, 'builder.engine', 'unknown key'],
    ['builder bad isolation', { ...base, builder: { isolation: 'vm' } }, 'builder.isolation', 'dedicated, shared'],
    ['builder bad timeout', { ...base, builder: { timeout: '30' } }, 'builder.timeout', 'duration'],
    ['builder zero timeout', { ...base, builder: { timeout: '0s' } }, 'builder.timeout', 'longer than 0'],
    ['builder cancel_superseded not boolean', { ...base, builder: { cancel_superseded: 'yes' } }, 'builder.cancel_superseded', 'true or false'],
    ['builder concurrency 0', { ...base, builder: { concurrency: 0 } }, 'builder.concurrency', '1 to 16'],
    ['builder concurrency 17', { ...base, builder: { concurrency: 17 } }, 'builder.concurrency', '1 to 16'],
    ['builder bad memory', { ...base, builder: { memory: '2 gigs' } }, 'builder.memory', 'size'],
    ['builder bad cpus', { ...base, builder: { cpus: 0 } }, 'builder.cpus', 'above 0'],
    ['builder bad network', { ...base, builder: { network: 'host' } }, 'builder.network', 'default, none'],
    ['source unknown key', { ...base, source: { branch: 'x' } }, 'source.branch', 'unknown key'],
    ['source bad url', { ...base, source: { url: 'not a url' } }, 'source.url', 'clone URL'],
  ];
  it.each(table)('%s', (_what, doc, path, fragment) => {
    const found = problems(doc);
    expect(found.map((p) => p.path)).toContain(path);
    expect(found.find((p) => p.path === path)!.message).toContain(fragment);
  });

  it('a missing field is named as the field itself: rules[1].tags: required', () => {
    const err = (() => {
      try {
        validateConfig({ ...base, rules: [rule, { name: 'x', source: 'tag', match: '*' }] });
      } catch (e) {
        return e as RulesError;
      }
      throw new Error('expected a RulesError');
    })();
    expect(err).toBeInstanceOf(RulesError);
    expect(err.message).toBe('rules[1].tags: required');
  });

  it('reports every problem at once, in document order', () => {
    const found = problems({
      repository: 'acme',
      image: 'acme/web:1',
      rules: [
        { name: 'a', source: 'x', tags: [] },
        { name: 'a', source: 'branch', match: '/(/', tags: ['{nope}'] },
      ],
    });
    expect(found.map((p) => p.path)).toEqual([
      'repository',
      'image',
      'rules[0].source',
      'rules[0].match',
      'rules[0].tags',
      'rules[1].match',
      'rules[1].tags[0]',
      'rules[1].name',
    ]);
    expect(found.find((p) => p.path === 'rules[1].name')!.message).toContain('duplicate');
  });

  it('promote_from cycles are invalid', () => {
    const found = problems({
      ...base,
      environments: { a: { service: 'a', promote_from: 'c' }, b: { service: 'b', promote_from: 'a' }, c: { service: 'c', promote_from: 'b' } },
    });
    expect(found.map((p) => p.path)).toContain('environments.a.promote_from');
    expect(found[0]!.message).toContain('cycle');
  });

  it('two environments cannot own one service or one host port', () => {
    const found = problems({
      ...base,
      environments: { a: { service: 'web', ports: ['18080:80'] }, b: { service: 'web', ports: ['18080:8080', '18080:8080/udp'] } },
    });
    expect(found.map((p) => p.path)).toEqual(['environments.b.service', 'environments.b.ports[0]']);
  });

  it('an invalid config changes nothing: validate throws, returning no config', () => {
    expect(() => validateConfig({ ...base, rules: [{ ...rule, source: 'nope' }] })).toThrow(RulesError);
  });
});

describe('valid documents and their normalised form', () => {
  it('fills defaults', () => {
    expect(validateConfig({ ...base, rules: [rule] })).toEqual({
      ...base,
      default_branch: 'main',
      builder: { isolation: 'dedicated', timeout: '30m', cancel_superseded: false, concurrency: 1, network: 'default' },
      environments: {},
      rules: [{ ...rule, dockerfile: 'Dockerfile', context: '.', build_args: {}, autobuild: true, cache: false }],
    });
  });

  it('keeps no rules key as no rules key (the default rule), and [] as []', () => {
    expect(validateConfig(base)).not.toHaveProperty('rules');
    expect(validateConfig({ ...base, rules: [] }).rules).toEqual([]);
  });

  it.each([
    ['.', 'Dockerfile', '.', 'Dockerfile'],
    ['./', './Dockerfile', '.', 'Dockerfile'],
    ['./docs/', 'Dockerfile', 'docs', 'Dockerfile'],
    ['services//web/', 'docker/../Dockerfile.web', 'services/web', 'Dockerfile.web'],
    ['a/b/..', './build/Dockerfile/', 'a', 'build/Dockerfile'],
  ])('context %j, dockerfile %j → %j, %j', (context, dockerfile, c, d) => {
    const r = validateConfig(withRule({ context, dockerfile })).rules![0]!;
    expect([r.context, r.dockerfile]).toEqual([c, d]);
  });

  it.each(['acme/web', 'localhost:5000/acme/web', 'registry.example.com/a/b/c', '127.0.0.1:5000/slipway/busybox', 'web', 'a__b/c-d.e', 'Registry.Example.com/x', '[::1]:5000/x'])(
    'image %s is valid',
    (image) => {
      expect(problems({ ...base, image })).toEqual([]);
    },
  );

  it('accepts tags as one string, scalar build args and env values as text', () => {
    const c = validateConfig({
      ...withRule({ tags: 'edge', build_args: { PORT: 8080, DEBUG: true } }),
      environments: { staging: { service: 'web', env: { N: 1, B: false } } },
    });
    expect(c.rules![0]!.tags).toEqual(['edge']);
    expect(c.rules![0]!.build_args).toEqual({ PORT: '8080', DEBUG: 'true' });
    expect(c.environments.staging!.env).toEqual({ N: '1', B: 'false' });
  });

  const full = {
    repository: 'acme/web',
    image: 'localhost:5000/acme/web',
    default_branch: 'trunk',
    builder: { isolation: 'shared', timeout: '10m', cancel_superseded: true, concurrency: 4, memory: '2g', cpus: 1.5, network: 'none' },
    source: { url: 'https://git.example.com/acme/web.git' },
    environments: {
      staging: {
        service: 'acme-web-staging',
        replicas: 2,
        ports: ['18080:8080', '18053:53/udp'],
        endpoint: 'proxy',
        env: { LOG_LEVEL: 'info' },
        health: { cmd: ['CMD', '/bin/healthcheck'], interval: '2s', retries: 2 },
      },
      production: {
        service: 'acme-web',
        replicas: 4,
        ports: ['18081:8080'],
        endpoint: 'mesh',
        health: { cmd: ['CMD-SHELL', 'wget -q -O- localhost:8080'], timeout: '500ms', start_period: '1m' },
        update: { parallelism: 0, delay: '2s', order: 'stop-first', failure_action: 'pause', monitor: '1m', max_failure_ratio: 0.25 },
        promote_from: 'staging',
        protected: true,
      },
    },
    rules: [{ name: 'edge', source: 'branch', match: 'trunk', tags: ['edge'], deploy: 'staging', paths: ['src/**', '!**/*.md'], cache: true }],
  };

  it('a full document: defaults where left out, durations kept as written', () => {
    const c = validateConfig(full);
    expect(c.environments.staging).toEqual({
      ...full.environments.staging,
      update: { parallelism: 1, delay: '1s', order: 'start-first', failure_action: 'rollback', monitor: '5s', max_failure_ratio: 0 },
      protected: false,
    });
    expect(c.environments.production).toEqual({ ...full.environments.production, env: {} });
    expect(c.builder).toEqual(full.builder);
    expect(c.source).toEqual(full.source);
  });

  it('typed forms carry milliseconds, bytes and parsed ports', () => {
    const c = validateConfig(full);
    const envs = environmentSpecs(c);
    expect(envs.staging!.ports).toEqual([
      { published: 18080, target: 8080, protocol: 'tcp' },
      { published: 18053, target: 53, protocol: 'udp' },
    ]);
    expect(envs.staging!.health).toEqual({ cmd: ['CMD', '/bin/healthcheck'], intervalMs: 2000, retries: 2 });
    expect(envs.staging!.update).toEqual({ parallelism: 1, delayMs: 1000, order: 'start-first', failureAction: 'rollback', monitorMs: 5000, maxFailureRatio: 0 });
    expect(envs.production!.health).toEqual({ cmd: ['CMD-SHELL', 'wget -q -O- localhost:8080'], timeoutMs: 500, startPeriodMs: 60000 });
    expect(envs.production!.update.monitorMs).toBe(60000);
    expect(envs.production!.promoteFrom).toBe('staging');
    expect(builderSpec(c)).toEqual({ isolation: 'shared', timeoutMs: 600000, cancelSuperseded: true, concurrency: 4, memoryBytes: 2 * 1024 ** 3, cpus: 1.5, network: 'none' });
    expect(builderSpec(validateConfig(base)).timeoutMs).toBe(30 * 60 * 1000);
  });

  it.each(['https://github.com/acme/web.git', 'ssh://git@host:22/acme/web.git', 'git@github.com:acme/web.git', 'git://host/x', 'file:///srv/git/web.git', '/srv/git/web.git'])(
    'source url %s is valid',
    (url) => {
      expect(problems({ ...base, source: { url } })).toEqual([]);
    },
  );

  it('the JSON form validates to itself (GET answers what PUT answered)', () => {
    for (const doc of [base, full, withRule({ context: './x/', tags: 'a' })]) {
      const once = validateConfig(doc);
      const json = JSON.parse(JSON.stringify(once)) as unknown;
      expect(validateConfig(json)).toEqual(once);
    }
  });
});

describe('parsing YAML and JSON', () => {
  it('reads YAML and JSON alike', () => {
    const yaml = 'repository: acme/web\nimage: acme/web\nrules:\n  - {name: r, source: branch, match: main, tags: [latest]}\n';
    const json = JSON.stringify({ repository: 'acme/web', image: 'acme/web', rules: [rule] });
    expect(loadConfig(yaml)).toEqual(loadConfig(json, { filename: 'x.json' }));
    expect(loadConfig(json)).toEqual(loadConfig(yaml)); // JSON is YAML too
  });

  it.each([
    ['YAML syntax', 'repository: [unclosed', {}, 'invalid YAML'],
    ['duplicate keys', 'repository: a/b\nrepository: c/d\n', {}, 'invalid YAML'],
    ['several documents', 'a: 1\n---\nb: 2\n', {}, 'invalid YAML'],
    ['JSON syntax', '{"a": ', { filename: 'c.json' }, 'invalid JSON'],
    ['empty', '\n# nothing\n', {}, 'empty'],
  ])('%s is a RulesError', (_what, text, opts, fragment) => {
    expect(() => parseConfigText(text, opts)).toThrowError(RulesError);
    expect(() => parseConfigText(text, opts)).toThrowError(fragment);
  });

  it('YAML merge keys and a byte-order mark work', () => {
    const text = '\uFEFFrepository: acme/web\nimage: acme/web\nx-defaults: &d {source: branch, tags: [latest], cache: true}\n';
    expect(() => loadConfig(text)).toThrowError('x-defaults: unknown key');
    const ok = '\uFEFFrepository: acme/web\nimage: acme/web\nrules:\n  - &d {name: a, source: branch, match: main, tags: [latest], cache: true}\n  - <<: *d\n    name: b\n    match: dev\n';
    expect(loadConfig(ok).rules!.map((r) => [r.name, r.match, r.cache])).toEqual([
      ['a', 'main', true],
      ['b', 'dev', true],
    ]);
    expect(loadConfig('\uFEFF{"repository": "acme/web", "image": "acme/web"}', { filename: 'c.json' }).repository).toBe('acme/web');
  });

  it('YAML 1.2: yes/on stay strings, so they are not booleans', () => {
    expect(problems(parseConfigText('repository: acme/web\nimage: acme/web\nrules:\n - {name: r, source: branch, match: main, tags: [x], cache: yes}\n'))).toEqual([
      { path: 'rules[0].cache', message: 'must be true or false, not "yes"' },
    ]);
  });
});

describe('previewRequest (POST /api/rules/preview)', () => {
  it('answers the preview for a document or its text', async () => {
    const { previewRequest } = await import('../src/rules/index.js');
    const config = { ...base, rules: [rule] };
    const a = previewRequest({ config, ref: 'refs/heads/main' });
    const b = previewRequest({ config: 'repository: acme/web\nimage: localhost:5000/acme/web\nrules: [{name: r, source: branch, match: main, tags: [latest]}]\n', ref: 'main', changed: ['x'] });
    expect(a).toEqual(b);
    expect(a.builds[0]!.tags).toEqual(['latest']);
  });

  it('names every problem: config ones under config., then ref, sha, changed', async () => {
    const { previewRequest } = await import('../src/rules/index.js');
    try {
      previewRequest({ config: { ...base, rules: [{ ...rule, match: '/(/' }] }, ref: 'refs/heads/a..b', sha: 'nope', changed: ['ok', 3], extra: 1 });
      throw new Error('expected a RulesError');
    } catch (err) {
      expect((err as RulesError).problems.map((p) => p.path)).toEqual(['extra', 'config.rules[0].match', 'ref', 'sha', 'changed[1]']);
    }
    expect(() => previewRequest({ ref: 'refs/heads/main' })).toThrowError('config: required');
  });
});

describe('environments of several services', () => {
  const app = (services: Record<string, unknown>, env: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
    ...base,
    environments: { staging: { service: 'shop-staging', replicas: 2, env: { LOG: 'info' }, services, ...env } },
    rules: [{ ...rule, name: 'app', deploy: 'staging' }],
    ...extra,
  });
  const pinned = `127.0.0.1:5000/lib/cache@sha256:${'b'.repeat(64)}`;

  it('normalises services: role from ports, merged env, replicas from the environment, shell commands', () => {
    const config = validateConfig(app({
      migrate: { build: 'app', role: 'job', command: 'node dist/migrate.js' },
      web: { build: 'app', ports: ['18080:8080'], depends_on: ['worker'] },
      worker: { build: 'app', env: { QUEUE: 'orders' }, replicas: 1 },
      cache: { image: pinned },
    }));
    expect(config.environments.staging!.services).toEqual({
      migrate: { build: 'app', role: 'job', command: ['/bin/sh', '-c', 'node dist/migrate.js'], env: { LOG: 'info' }, ports: [], depends_on: [] },
      web: { build: 'app', role: 'web', env: { LOG: 'info' }, replicas: 2, ports: ['18080:8080'], depends_on: ['worker'] },
      worker: { build: 'app', role: 'worker', env: { LOG: 'info', QUEUE: 'orders' }, replicas: 1, ports: [], depends_on: [] },
      cache: { image: pinned, role: 'worker', env: { LOG: 'info' }, replicas: 2, ports: [], depends_on: [] },
    });
  });

  it('validates its own normalised form to the same document (what the API stores is read back)', () => {
    const once = validateConfig(app({ migrate: { build: 'app', role: 'job', command: 'true' }, web: { build: 'app', ports: ['18080:8080'], health: { cmd: ['NONE'] } }, cache: { image: pinned } }));
    expect(validateConfig(JSON.parse(JSON.stringify(once)))).toEqual(once);
  });

  it('orders services for rollout: jobs first, then each after what it depends on', () => {
    const spec = environmentSpecs(validateConfig(app({
      web: { build: 'app', ports: ['18080:8080'], depends_on: ['worker'] },
      worker: { build: 'app', depends_on: ['cache'] },
      migrate: { build: 'app', role: 'job' },
      cache: { image: pinned },
    }))).staging!;
    expect(spec.services!.map((s) => s.name)).toEqual(['migrate', 'cache', 'worker', 'web']);
    const web = spec.services!.find((s) => s.name === 'web')!;
    expect(web.spec).toMatchObject({ name: 'staging', service: 'shop-staging-web', network: 'shop-staging-net', replicas: 2, ports: [{ published: 18080, target: 8080, protocol: 'tcp' }] });
    expect(spec.services!.find((s) => s.name === 'cache')!.source).toEqual({ image: '127.0.0.1:5000/lib/cache', digest: `sha256:${'b'.repeat(64)}` });
    expect(spec.services!.find((s) => s.name === 'migrate')!.spec.replicas).toBe(0);
  });


  it('previews the release plan: steps by depends_on, independent services in one step, which services this ref feeds', async () => {
    const { previewRequest } = await import('../src/rules/index.js');
    const config = app({
      web: { build: 'app', ports: ['18080:8080'] },
      worker: { build: 'app', depends_on: ['web'] },
      mailer: { build: 'app', replicas: 1 },
      migrate: { build: 'app', role: 'job' },
      cache: { image: pinned },
    });
    const main = previewRequest({ config, ref: 'refs/heads/main' });
    expect(main.applications).toEqual([{
      environment: 'staging',
      services: [
        { name: 'migrate', service: 'shop-staging-migrate', role: 'job', from: 'rule app', replicas: 0, ports: [], dependsOn: [], step: 0, fed: true },
        { name: 'web', service: 'shop-staging-web', role: 'web', from: 'rule app', replicas: 2, ports: ['18080:8080'], dependsOn: [], step: 1, fed: true },
        { name: 'worker', service: 'shop-staging-worker', role: 'worker', from: 'rule app', replicas: 2, ports: [], dependsOn: ['web'], step: 2, fed: true },
        { name: 'mailer', service: 'shop-staging-mailer', role: 'worker', from: 'rule app', replicas: 1, ports: [], dependsOn: [], step: 1, fed: true },
        { name: 'cache', service: 'shop-staging-cache', role: 'worker', from: pinned, replicas: 2, ports: [], dependsOn: [], step: 1, fed: false },
      ],
    }]);
    // A ref no rule builds feeds no service; a config without services has no applications at all.
    expect(previewRequest({ config, ref: 'refs/heads/other' }).applications![0]!.services.map((s) => s.fed)).toEqual([false, false, false, false, false]);
    expect(previewRequest({ config: { ...base, rules: [rule] }, ref: 'refs/heads/main' })).not.toHaveProperty('applications');
  });
  const table: [string, unknown, string, string][] = [
    ['neither build nor image', app({ web: {} }), 'environments.staging.services.web', 'exactly one of build'],
    ['both build and image', app({ web: { build: 'app', image: pinned } }), 'environments.staging.services.web', 'exactly one of build'],
    ['an image by tag', app({ web: { image: 'redis:7' }, w: { build: 'app' } }), 'environments.staging.services.web.image', 'pinned by digest'],
    ['an unknown rule', app({ web: { build: 'nope' }, w: { build: 'app' } }), 'environments.staging.services.web.build', 'unknown rule "nope"'],
    ['an unknown key', app({ web: { build: 'app', volumes: [] } }), 'environments.staging.services.web.volumes', 'unknown key'],
    ['a bad role', app({ web: { build: 'app', role: 'cron' } }), 'environments.staging.services.web.role', 'web'],
    ['a job with replicas', app({ m: { build: 'app', role: 'job', replicas: 2 } }), 'environments.staging.services.m.replicas', 'runs once'],
    ['a job with ports', app({ m: { build: 'app', role: 'job', ports: ['1:2'] } }), 'environments.staging.services.m.ports', 'runs once'],
    ['a port twice', app({ a: { build: 'app', ports: ['18080:80'] }, b: { build: 'app', ports: ['18080:81'] } }), 'environments.staging.services.b.ports[0]', 'already published by service "a"'],
    ['an unknown dependency', app({ a: { build: 'app', depends_on: ['db'] } }), 'environments.staging.services.a.depends_on[0]', 'unknown service "db"'],
    ['depending on a job', app({ a: { build: 'app', depends_on: ['m'] }, m: { build: 'app', role: 'job' } }), 'environments.staging.services.a.depends_on[0]', 'jobs run before'],
    ['a cycle', app({ a: { build: 'app', depends_on: ['b'] }, b: { build: 'app', depends_on: ['a'] } }), 'environments.staging.services.a.depends_on', 'cycle: a → b → a'],
    ['a bad command', app({ a: { build: 'app', command: [] } }), 'environments.staging.services.a.command', 'list of strings'],
    ['no services', app({}), 'environments.staging.services', 'at least one service'],
    ['environment-level ports', app({ a: { build: 'app' } }, { ports: ['1:2'] }), 'environments.staging.ports', 'per service'],
    ['a name too long for Swarm', app({ [`a${'b'.repeat(60)}`]: { build: 'app' } }), `environments.staging.services.a${'b'.repeat(60)}`, 'longer than 63'],
    ['a rule deploying to an application it feeds nothing of', app({ a: { image: pinned } }), 'rules[0].deploy', 'no service of staging is built by rule app'],
    [
      'promote_from between different services',
      { ...app({ a: { build: 'app' } }), environments: { staging: { service: 's', services: { a: { build: 'app' } } }, production: { service: 'p', promote_from: 'staging', services: { a: { build: 'app' }, b: { build: 'app' } } } } },
      'environments.production.promote_from',
      'same services',
    ],
  ];
  it.each(table)('%s', (_what, doc, path, fragment) => {
    const found = problems(doc);
    expect(found.find((p) => p.path === path)?.message ?? JSON.stringify(found)).toContain(fragment);
  });
});
