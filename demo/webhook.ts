import { createHmac, randomUUID } from 'node:crypto';
import type { Commit } from './sample-app.js';

/**
 * A GitHub `push` delivery for a commit, shaped like GitHub's (the fields of
 * @octokit/webhooks-examples' push example that matter), signed with the webhook secret.
 */
export function pushPayload(o: { repo: string; cloneUrl: string; commit: Commit; pusher: string }) {
  const [owner, name] = o.repo.split('/') as [string, string];
  const c = o.commit;
  const commit = {
    id: c.sha,
    tree_id: c.sha,
    distinct: true,
    message: c.message,
    timestamp: new Date().toISOString(),
    url: `${o.cloneUrl.replace(/\.git$/, '')}/commit/${c.sha}`,
    author: { name: 'Demo Developer', email: 'dev@example.com', username: o.pusher },
    committer: { name: 'Demo Developer', email: 'dev@example.com', username: o.pusher },
    added: c.added,
    removed: c.removed,
    modified: c.modified,
  };
  return {
    ref: 'refs/heads/main',
    before: c.before,
    after: c.sha,
    created: /^0+$/.test(c.before),
    deleted: false,
    forced: false,
    base_ref: null,
    compare: `${o.cloneUrl.replace(/\.git$/, '')}/compare/${c.before.slice(0, 12)}...${c.sha.slice(0, 12)}`,
    commits: [commit],
    head_commit: commit,
    repository: {
      id: 1,
      name,
      full_name: o.repo,
      private: false,
      owner: { login: owner, name: owner },
      html_url: o.cloneUrl.replace(/\.git$/, ''),
      clone_url: o.cloneUrl,
      default_branch: 'main',
      master_branch: 'main',
    },
    pusher: { name: o.pusher, email: 'dev@example.com' },
    sender: { login: o.pusher, id: 1, type: 'User' },
  };
}

/** Sends a signed delivery; answers the status and body slipway gave. */
export async function deliver(url: string, secret: string, event: string, payload: unknown): Promise<{ status: number; body: unknown }> {
  const body = JSON.stringify(payload);
  const signature = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
  const res = await fetch(`${url}/webhooks/github`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'user-agent': 'GitHub-Hookshot/slipway-demo',
      'x-github-event': event,
      'x-github-delivery': randomUUID(),
      'x-github-hook-id': '1',
      'x-hub-signature-256': signature,
    },
    body,
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed };
}
