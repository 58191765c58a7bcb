import { Redis } from 'ioredis';
import { laneKeys } from '../src/queue/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, deliver, eventually, pushPayload, startIntake, type Intake } from '../dev/webhooks.js';

/** Nothing acknowledged is lost: Redis with `appendfsync always`, SIGKILLed after N accepted deliveries. */
let intake: Intake;

beforeAll(async () => {
  intake = await startIntake({ appendfsync: 'always' });
});
afterAll(async () => {
  await intake?.close();
});

describe('Redis killed with SIGKILL after N acknowledged deliveries', () => {
  it('has all N builds and their jobs after a restart', async () => {
    const repos = ['dur/one', 'dur/two', 'dur/three'];
    for (const repo of repos) {
      const put = await api(intake.url, 'PUT', `/api/repos/${repo}`, {
        json: { repository: repo, image: `localhost:5000/${repo}`, rules: [{ name: 'all', source: 'branch', match: '*', tags: ['{sourceref}-{sha:7}'] }] },
      });
      expect(put.status).toBe(200);
    }
    const N = 60;
    const acknowledged: { id: string; build: string; repo: string; ref: string }[] = [];
    // Sent concurrently, 10 at a time, each to its own ref (nothing supersedes anything).
    for (let i = 0; i < N; i += 10) {
      const batch = await Promise.all(
        Array.from({ length: 10 }, (_, j) => {
          const repo = repos[(i + j) % repos.length]!;
          const ref = `refs/heads/b${i + j}`;
          return deliver(intake.url, { event: 'push', payload: pushPayload({ repo, ref }) }).then((r) => ({ r, repo, ref }));
        }),
      );
      for (const { r, repo, ref } of batch) {
        expect(r.status).toBe(202);
        expect(r.body.builds).toHaveLength(1);
        acknowledged.push({ id: r.id, build: r.body.builds[0], repo, ref });
      }
    }
    expect(acknowledged).toHaveLength(N);

    await intake.redis.kill9();
    await intake.redis.restart();

    // Read Redis directly after the restart, then through the API once it has reconnected.
    const r = new Redis(intake.redis.url);
    try {
      const waiting = new Set<string>();
      for (const repo of repos) for (const id of await r.lrange(laneKeys.lane(repo), 0, -1)) waiting.add(id);
      const holding = new Set(await r.hkeys(laneKeys.active));
      for (const a of acknowledged) {
        expect(await r.exists(`slipway:delivery:${a.id}`), a.id).toBe(1);
        // Its job: waiting in its repository's lane, or dispatched to the work queue.
        expect(waiting.has(a.build) || holding.has(a.build), a.build).toBe(true);
      }
    } finally {
      r.disconnect();
    }
    await eventually(async () => (await api(intake.url, 'GET', '/readyz')).status === 200, 250);
    for (const a of acknowledged) {
      const rec = await api(intake.url, 'GET', `/api/builds/${a.build}`);
      expect(rec.status, a.build).toBe(200);
      expect(rec.body).toMatchObject({ id: a.build, repo: a.repo, ref: a.ref, status: 'queued', deliveryId: a.id });
    }
    const listed = await api(intake.url, 'GET', '/api/builds?limit=500');
    expect(new Set(listed.body.builds.map((b: { id: string }) => b.id))).toEqual(new Set(acknowledged.map((a) => a.build)));
    // A redelivery of an acknowledged delivery is still recognised after the crash.
    const again = await deliver(intake.url, { event: 'push', payload: pushPayload({ repo: 'dur/one', ref: 'refs/heads/b0' }), id: acknowledged[0]!.id });
    expect(again.status).toBe(200);
    expect(again.body.duplicate).toBe(true);
  });
});
