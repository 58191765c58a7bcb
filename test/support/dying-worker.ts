/**
 * A worker that dies between a build's success and its auto-deploy request (the SIGKILL test of
 * test/pipeline.test.ts): real lanes and the real lifecycle, a runner that answers the digest it
 * is given, and a deployer that prints `requesting` and never answers, so the parent kills it
 * exactly there. Arguments: JSON {redisUrl, digest}.
 */
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Lifecycle } from '../../src/pipeline/index.js';
import { LaneWorker } from '../../src/queue/index.js';
import { BuildStore } from '../../src/store/index.js';

const args = JSON.parse(process.argv[2]!) as { redisUrl: string; digest: string };
const redis = new Redis(args.redisUrl, { maxRetriesPerRequest: null });
const log = pino({ level: 'warn' });
const lifecycle = new Lifecycle({
  deployer: {
    onBuildSucceeded: (build) => {
      process.stdout.write(`requesting ${build.id}\n`);
      return new Promise<string[]>(() => undefined);
    },
    autoDeployOf: async () => null,
    latest: async () => null,
  },
  builds: new BuildStore(redis),
  publish: () => undefined,
  log,
});
const worker = new LaneWorker({ redis, runner: { run: async () => ({ digest: args.digest }) }, slots: 1, log, onChange: (r) => lifecycle.buildChanged(r) });
await worker.start();
process.stdout.write('ready\n');
