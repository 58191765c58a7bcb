import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Deployer, DeploymentStore, repoConfigSource, SwarmTarget } from '../src/deploy/index.js';
import { RepoStore } from '../src/store/index.js';
import { buildTestImage, removeTestImages, TEST_REPOSITORY, type TestImage } from '../dev/deploy-images.js';
import { api, removeDeployObjects, settled, startDeployStack, type DeployStack } from '../dev/deploy.js';
import type { TaskView } from '../src/deploy/index.js';

/**
 * `GET /api/deployments/{id}` of a rollout in progress carries its service's Swarm tasks, read live
 * (what the dashboard's environment page shows); on the host's real Swarm and registry.
 */

const REPO = 'slipway-test/deploy-tasks';
const SERVICE = 'slipway-test-tasks';
const PORT = 18095;
const CONFIG = {
  repository: REPO,
  image: TEST_REPOSITORY,
  environments: {
    staging: { service: SERVICE, replicas: 2, ports: [`${PORT}:8080`], update: { delay: '0s', monitor: '2s' } },
  },
  rules: [],
};

let stack: DeployStack;
let v1: TestImage, v2: TestImage;

const deploy = (digest: string) => api(stack.url, 'POST', `/api/repos/${REPO}/environments/staging/deploy`, { json: { digest } });
const answer = (id: string) => api(stack.url, 'GET', `/api/deployments/${id}`);

async function serviceTaskIds(): Promise<string[]> {
  const tasks = await stack.docker.listTasks({ filters: { service: [SERVICE] } });
  return tasks.map((t: { ID: string }) => t.ID).sort();
}

beforeAll(async () => {
  [v1, v2] = await Promise.all([buildTestImage('tasks-v1'), buildTestImage('tasks-v2')]);
  stack = await startDeployStack();
  await removeDeployObjects(stack.docker, REPO);
  const put = await api(stack.url, 'PUT', `/api/repos/${REPO}`, { json: CONFIG });
  expect(put.status, JSON.stringify(put.body)).toBe(200);
}, 300_000);

afterAll(async () => {
  await stack?.close();
  if (stack) await removeDeployObjects(stack.docker, REPO);
  await removeTestImages([v1, v2].filter(Boolean));
}, 180_000);

describe('a rollout in progress answers its Swarm tasks', () => {
  it('lists the service\'s tasks with slot, states and digest while pending and running; a settled record has none', async () => {
    const first = await deploy(v1.digest);
    expect(first.status).toBe(202);
    const done1 = await settled(stack.url, first.body.id);
    expect(done1.status).toBe('succeeded');
    expect(done1).not.toHaveProperty('tasks');

    // With the worker stopped the next rollout stays pending: its answer shows what runs now (v1).
    await stack.worker.stop();
    const second = await deploy(v2.digest);
    expect(second.status).toBe(202);
    const pending = await answer(second.body.id);
    expect(pending.body).toMatchObject({ id: second.body.id, status: 'pending', digest: v2.digest });
    const running1 = (pending.body.tasks as TaskView[]).filter((t) => t.desiredState === 'running');
    expect(running1.map((t) => t.digest)).toEqual([v1.digest, v1.digest]);
    expect(running1.map((t) => t.slot).sort()).toEqual([1, 2]);
    expect((pending.body.tasks as TaskView[]).map((t) => t.id).sort()).toEqual(await serviceTaskIds());

    // Docker unreachable: the record is still the answer, without tasks, and the failure is logged.
    const warnings: object[] = [];
    const offline = new Deployer({
      store: new DeploymentStore(stack.client),
      configs: repoConfigSource(new RepoStore(stack.client)),
      target: new SwarmTarget({ docker: new Docker({ socketPath: '/nonexistent/docker.sock' }) }),
      log: { warn: (obj) => warnings.push(obj) },
    });
    const record = await offline.deployment(second.body.id);
    expect(record).toEqual(await stack.store.get(second.body.id));
    expect(record).not.toHaveProperty('tasks');
    expect(warnings).toEqual([expect.objectContaining({ deployment: second.body.id, err: expect.stringContaining('nonexistent') })]);

    // Running: the tasks of the update, the new digest among them, each with its Swarm states.
    stack.startWorker();
    let seen: { status: string; tasks?: TaskView[] } | null = null;
    for (;;) {
      const res = await answer(second.body.id);
      expect(res.status).toBe(200);
      if (!['pending', 'running'].includes(res.body.status)) break;
      if (res.body.status === 'running' && (res.body.tasks as TaskView[]).some((t) => t.digest === v2.digest)) {
        seen = res.body;
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen, 'the rollout was seen running with a task of the new digest').not.toBeNull();
    const tasks = seen!.tasks!;
    for (const t of tasks) {
      expect(t).toEqual({ id: expect.any(String), slot: expect.any(Number), state: expect.any(String), desiredState: expect.any(String), digest: expect.any(String), message: expect.any(String) });
      expect([v1.digest, v2.digest]).toContain(t.digest);
      expect([1, 2]).toContain(t.slot);
    }
    const ids = new Set(await serviceTaskIds());
    expect(tasks.every((t) => ids.has(t.id))).toBe(true);

    const done2 = await settled(stack.url, second.body.id);
    expect(done2.status).toBe('succeeded');
    expect(done2).not.toHaveProperty('tasks');
  }, 300_000);
});
