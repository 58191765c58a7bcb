import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeployError, networkName, SwarmTarget } from '../src/deploy/index.js';
import type { RolloutRequest } from '../src/deploy/target.js';
import { environmentSpecs, validateConfig } from '../src/rules/index.js';
import { buildTestImage, removeTestImages, TEST_REPOSITORY, type TestImage } from '../dev/deploy-images.js';
import { eventually, removeDeployObjects } from '../dev/deploy.js';

/**
 * An environment's overlay network on the host's real Swarm: slipway joins a network of that name only
 * when it carries slipway's labels for the same repository and environment. A network someone else
 * made (or another repository's) is refused and left exactly as it was.
 */

const REPO = 'slipway-test/deploy-network';
const SERVICE = 'slipway-test-netown';
const NETWORK = networkName(SERVICE);
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const target = new SwarmTarget({ docker, pollMs: 100 });
let image: TestImage;
let revision = 0;

const config = environmentSpecs(
  validateConfig({ repository: REPO, image: TEST_REPOSITORY, environments: { staging: { service: SERVICE, update: { delay: '0s', monitor: '1s' } } } }),
).staging!;

function rollout(): RolloutRequest {
  revision += 1;
  return {
    repo: REPO,
    environment: 'staging',
    config,
    imageRef: `${TEST_REPOSITORY}@${image.digest}`,
    deploymentId: `d-network-${process.pid}-${revision}`,
    revision,
    since: Date.now(),
  };
}

async function inspectNetwork(): Promise<{ Id: string; Labels: Record<string, string> } | null> {
  try {
    return (await docker.getNetwork(NETWORK).inspect()) as { Id: string; Labels: Record<string, string> };
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return null;
    throw err;
  }
}

async function serviceExists(): Promise<boolean> {
  return (await docker.listServices({ filters: { name: [SERVICE] } })).some((s) => s.Spec?.Name === SERVICE);
}

/** Removes the network of the environment's name, whoever made it (Swarm detaches tasks asynchronously). */
async function removeNetwork(): Promise<void> {
  await eventually(async () => {
    await docker.getNetwork(NETWORK).remove().catch((err: { statusCode?: number }) => {
      if (err.statusCode !== 404) throw err;
    });
    return true;
  }, 60_000);
}

async function cleanUp(): Promise<void> {
  await removeDeployObjects(docker, REPO);
  await removeNetwork();
}

beforeAll(async () => {
  image = await buildTestImage('network');
  await cleanUp();
}, 120_000);

afterAll(async () => {
  await cleanUp();
  if (image) await removeTestImages([image]);
}, 120_000);

describe('an environment network is reused only when it carries slipway\'s labels for that environment', () => {
  it.each([
    ['no labels', {}, /it has no slipway labels/],
    [
      'labels naming another repository',
      { 'io.slipway.kind': 'deploy', 'io.slipway.repo': 'slipway-test/someone-else', 'io.slipway.environment': 'staging' },
      /its labels say io\.slipway\.kind=deploy, io\.slipway\.repo=slipway-test\/someone-else, io\.slipway\.environment=staging/,
    ],
    [
      'labels naming another environment',
      { 'io.slipway.kind': 'deploy', 'io.slipway.repo': REPO, 'io.slipway.environment': 'production' },
      /io\.slipway\.environment=production/,
    ],
  ])('a same-named network with %s is refused (network_not_owned) and left untouched', async (_what, labels, said) => {
    const made = await docker.createNetwork({ Name: NETWORK, Driver: 'overlay', Attachable: true, Labels: labels });
    try {
      const before = await inspectNetwork();
      const err = await target.apply(rollout()).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DeployError);
      expect(err).toMatchObject({ status: 409, code: 'network_not_owned' });
      const message = (err as Error).message;
      expect(message).toContain(`Docker network ${NETWORK} exists but is not slipway's network for ${REPO} staging`);
      expect(message).toMatch(said);
      expect(message).toContain(`docker network rm ${NETWORK}`);
      expect(message).toMatch(/rename the environment's service/);

      // Nothing changed: same network, same labels, and no service was created to join it.
      const after = await inspectNetwork();
      expect(after?.Id).toBe(made.id);
      expect(after?.Labels).toEqual(before?.Labels);
      expect(await serviceExists()).toBe(false);

      // Removing the environment leaves a network that is not its own alone too.
      await target.remove(REPO, config);
      expect((await inspectNetwork())?.Id).toBe(made.id);
    } finally {
      await removeNetwork();
    }
  }, 60_000);

  it('creates its own labelled network, reuses it on the next rollout, and removes it with the environment', async () => {
    const first = rollout();
    await target.apply(first);
    const created = await inspectNetwork();
    expect(created?.Labels).toEqual({ 'io.slipway.kind': 'deploy', 'io.slipway.repo': REPO, 'io.slipway.environment': 'staging' });
    expect(await target.settle(first, Date.now() + 60_000)).toMatchObject({ status: 'succeeded' });

    const second = rollout();
    await target.apply(second);
    expect(await target.settle(second, Date.now() + 60_000)).toMatchObject({ status: 'succeeded' });
    expect((await inspectNetwork())?.Id).toBe(created?.Id);
    expect((await target.state(config)).deploymentId).toBe(second.deploymentId);

    await target.remove(REPO, config);
    expect(await serviceExists()).toBe(false);
    // Swarm accepts the removal at once; the node drops its copy once the tasks have detached.
    expect(await eventually(async () => (await inspectNetwork()) === null, 30_000)).toBe(true);
  }, 120_000);
});
