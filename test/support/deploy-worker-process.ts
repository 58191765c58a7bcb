/**
 * A deploy worker in its own process (what `slipway worker` runs for rollouts), so a test can SIGKILL it
 * mid-rollout: `tsx worker-process.ts <redis-url>`; prints "started" once it polls.
 */
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { DeploymentStore, DeployWorker, SwarmTarget } from '../../src/deploy/index.js';
import { AuditStore } from '../../src/store/index.js';

const redis = new Redis(process.argv[2]!, { maxRetriesPerRequest: null });
const docker = new Docker({ socketPath: '/var/run/docker.sock' });
const worker = new DeployWorker({
  store: new DeploymentStore(redis),
  target: new SwarmTarget({ docker, pollMs: 200 }),
  audit: new AuditStore(redis),
  pollMs: 100,
  lockTtlMs: 5000,
});
worker.start();
process.stdout.write('started\n');
