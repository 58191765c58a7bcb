import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { dockerClient } from '../src/main.js';

/**
 * README's first command, as CI runs it: `npm run demo -- --once` brings the services up, builds
 * the sample app from a real git server, rolls it out to staging, promotes it to production, then
 * pushes a version with a broken health check that must be rolled back on its own. It exits 0 only
 * when each of those happened (it checks the environments' URLs and records itself), and it must
 * leave no demo service running behind it.
 */
describe('npm run demo -- --once', () => {
  it('ends with production serving the new version and the broken push rolled back', async () => {
    const child = spawn('npm', ['run', 'demo', '--', '--once'], { cwd: process.cwd(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code, out).toBe(0);

    // The narration shows each stage, in order.
    const stages = [
      'signed push webhook accepted (202)',
      'npm ci', // the real app's dependencies, downloaded inside the dedicated build
      '==> ', // build log lines streamed from the build
      'staging revision 1: succeeded',
      'http://127.0.0.1:18180/ answers: node-api v1 (node v',
      'production revision 1: succeeded',
      'http://127.0.0.1:18181/ answers: node-api v1 (node v',
      'staging revision 2: rolled back',
      'automatic rollback: staging rolled back',
      'still answers: node-api v1 (node v',
      'Dashboard:  http://127.0.0.1:18190/',
      'Token:      ',
    ];
    let at = 0;
    for (const stage of stages) {
      const found = out.indexOf(stage, at);
      expect(found, `"${stage}" after position ${at} in:\n${out}`).toBeGreaterThanOrEqual(0);
      at = found;
    }

    // Nothing of the demo keeps running in the Swarm.
    const left = await dockerClient(undefined).listServices({ filters: { label: ['io.slipway.repo=demo/hello'] } });
    expect(left.map((s) => s.Spec?.Name)).toEqual([]);
  }, 900_000);
});
