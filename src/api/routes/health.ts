import { sameSecret } from '../auth.js';
import { ApiError } from '../errors.js';
import type { RouteModule } from './index.js';

async function check(what: () => Promise<unknown>, timeoutMs: number): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      what(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs))),
    ]);
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    clearTimeout(timer);
  }
}

/** Liveness, readiness (Redis and Docker answer) and Prometheus metrics (behind SLIPWAY_METRICS_TOKEN when set). */
export const healthRoutes: RouteModule = (router, { redis, docker, metrics, metricsToken }) => {
  router.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });

  router.get('/readyz', async (_req, res) => {
    const [redisProblem, dockerProblem] = await Promise.all([check(() => redis.ping(), 2000), check(() => docker.ping(), 2000)]);
    const checks = { redis: redisProblem ?? 'ok', docker: dockerProblem ?? 'ok' };
    const failed = Object.entries(checks).filter(([, v]) => v !== 'ok').map(([k]) => k);
    res.status(failed.length ? 503 : 200).json({ ready: failed.length === 0, failed, checks });
  });

  router.get('/metrics', async (req, res) => {
    if (metricsToken && !sameSecret(/^Bearer\s+(\S+)\s*$/i.exec(req.get('authorization') ?? '')?.[1] ?? '', metricsToken)) {
      throw new ApiError(401, 'metrics need Authorization: Bearer <SLIPWAY_METRICS_TOKEN>', 'unauthenticated');
    }
    res.type(metrics.contentType).send(await metrics.metrics());
  });
};
