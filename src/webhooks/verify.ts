import { Webhooks } from '@octokit/webhooks';

/** Whether `signature` signs `payload` with the secret of `repo` (null: the delivery names none). */
export type Verify = (payload: string, signature: string, repo: string | null) => Promise<boolean>;

export interface WebhookSecrets {
  /** SLIPWAY_WEBHOOK_SECRET: signs the deliveries of every repository without its own. */
  shared: string;
  /** SLIPWAY_WEBHOOK_SECRET_PREVIOUS: still accepted in its place while GitHub's side is rotated. */
  previous?: string | undefined;
  /** A repository's own secret, or null; with one, the shared secrets no longer sign its deliveries. */
  own?: (repo: string) => Promise<string | null>;
}

/**
 * `X-Hub-Signature-256` over the raw body with @octokit/webhooks (HMAC-SHA256, timing-safe). A
 * repository with its own secret is verified with that alone, so whoever holds the shared secret
 * (or another repository's) cannot sign its pushes. Otherwise the current shared secret is tried
 * first, so a delivery costs one HMAC; the previous one only when the first does not match.
 */
export function createVerifier(secrets: WebhookSecrets): Verify {
  const shared = [secrets.shared, secrets.previous].filter((s): s is string => !!s).map((s) => new Webhooks({ secret: s }));
  const owned = new Map<string, Webhooks>();
  const checkerOf = (secret: string): Webhooks => {
    let w = owned.get(secret);
    if (!w) {
      if (owned.size >= 1000) owned.clear();
      w = new Webhooks({ secret });
      owned.set(secret, w);
    }
    return w;
  };
  return async (payload, signature, repo) => {
    if (!payload || !signature) return false;
    const own = repo && secrets.own ? await secrets.own(repo) : null;
    if (own) return checkerOf(own).verify(payload, signature);
    for (const w of shared) if (await w.verify(payload, signature)) return true;
    return false;
  };
}
