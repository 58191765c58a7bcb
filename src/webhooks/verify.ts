import { Webhooks } from '@octokit/webhooks';

export type Verify = (payload: string, signature: string) => Promise<boolean>;

/**
 * `X-Hub-Signature-256` over the raw body with @octokit/webhooks (HMAC-SHA256, timing-safe).
 * The current secret is tried first, so a delivery costs one HMAC; the previous secret is
 * tried only when the first does not match (rotation).
 */
export function createVerifier(secret: string, previous?: string): Verify {
  const checks = [secret, previous].filter((s): s is string => !!s).map((s) => new Webhooks({ secret: s }));
  return async (payload, signature) => {
    if (!payload || !signature) return false;
    for (const w of checks) if (await w.verify(payload, signature)) return true;
    return false;
  };
}
