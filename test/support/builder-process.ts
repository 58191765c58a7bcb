/**
 * A worker process for the SIGKILL test: runs one build with DockerBuildRunner and prints its log
 * on stdout. Arguments: JSON {redisUrl, dataDir, build, isolation}.
 */
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { DockerBuildRunner } from '../../src/builders/index.js';
import type { BuildRecord } from '../../src/store/index.js';

const args = JSON.parse(process.argv[2]!) as { redisUrl: string; dataDir: string; build: BuildRecord; isolation: 'dedicated' | 'shared' };
const redis = new Redis(args.redisUrl);
const runner = new DockerBuildRunner({ redis, docker: new Docker(), dataDir: args.dataDir, defaults: { isolation: args.isolation } });
const out = await runner
  .run(args.build, {
    signal: new AbortController().signal,
    log: { line: (t) => console.log(t), step: (n) => console.log(`==> ${n}`) },
  })
  .catch((err: unknown) => ({ error: (err as Error).message }));
console.log(JSON.stringify(out));
redis.disconnect();
