import { BuildError } from './errors.js';

export interface RegistryCredentials {
  username: string;
  password: string;
}

/** An image repository split into its registry host and its name there. */
export interface ImageName {
  registry: string; // host[:port]
  name: string; // path within the registry
}

export function parseImage(image: string): ImageName {
  const first = image.split('/')[0] ?? '';
  if (image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    return { registry: first, name: image.slice(first.length + 1) };
  }
  return { registry: 'registry-1.docker.io', name: image.includes('/') ? image : `library/${image}` };
}

const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

export interface Manifest {
  body: Buffer;
  mediaType: string;
  digest: string;
}

export interface RegistryClientOptions {
  credentialsFor?: (registry: string) => RegistryCredentials | undefined;
  /** Registries spoken to over plain http; loopback registries always are. */
  insecure?: readonly string[];
}

/**
 * A small client of the distribution (Docker Registry v2) API: manifests by digest or tag,
 * tag lists and deletes; answers Basic and Bearer-token challenges with the configured credentials.
 */
export class RegistryClient {
  private readonly tokens = new Map<string, string>();

  constructor(private readonly opts: RegistryClientOptions = {}) {}

  private base(registry: string): string {
    const host = registry.replace(/:\d+$/, '');
    const plain = host === 'localhost' || host.startsWith('127.') || host === '[::1]' || this.opts.insecure?.includes(registry);
    return `${plain ? 'http' : 'https'}://${registry}`;
  }

  private async request(registry: string, path: string, init: RequestInit & { scope: string }): Promise<Response> {
    const url = `${this.base(registry)}${path}`;
    const key = `${registry} ${init.scope}`;
    const headers = new Headers(init.headers);
    const cached = this.tokens.get(key);
    if (cached) headers.set('authorization', cached);
    let res = await fetch(url, { ...init, headers });
    if (res.status !== 401) return res;
    const challenge = res.headers.get('www-authenticate') ?? '';
    await res.body?.cancel();
    const creds = this.opts.credentialsFor?.(registry);
    const auth = await this.authorize(challenge, creds, init.scope);
    if (!auth) return new Response(null, { status: 401, statusText: 'Unauthorized' });
    this.tokens.set(key, auth);
    headers.set('authorization', auth);
    res = await fetch(url, { ...init, headers });
    return res;
  }

  private async authorize(challenge: string, creds: RegistryCredentials | undefined, scope: string): Promise<string | undefined> {
    const basic = creds ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}` : undefined;
    if (/^basic/i.test(challenge)) return basic;
    if (!/^bearer/i.test(challenge)) return undefined;
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (!params.realm) return undefined;
    const url = new URL(params.realm);
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', scope);
    const res = await fetch(url, { headers: basic ? { authorization: basic } : {} });
    if (!res.ok) return undefined;
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    return token ? `Bearer ${token}` : undefined;
  }

  /**
   * Proves before a build that the registry takes our credentials for pushing `image`: a refusal
   * fails the build at once (registry_auth) instead of after the build and the engine's push retries.
   */
  async checkPush(image: string): Promise<void> {
    const { registry, name } = parseImage(image);
    let res: Response;
    try {
      res = await this.request(registry, '/v2/', { scope: `repository:${name}:pull,push` });
    } catch (err) {
      throw new BuildError('push_failed', `registry ${registry} unreachable: ${String((err as Error).cause ?? (err as Error).message)}`, true);
    }
    await res.body?.cancel();
    if (res.status === 401 || res.status === 403) {
      const creds = this.opts.credentialsFor?.(registry) ? 'the configured credentials' : 'anonymous pushes';
      throw new BuildError('registry_auth', `registry ${registry} refused ${creds} for ${image}: ${res.status} ${res.statusText || 'Unauthorized'}`);
    }
  }

  /** The manifest under a tag or digest, or null when the registry does not have it. */
  async getManifest(image: string, reference: string): Promise<Manifest | null> {
    const { registry, name } = parseImage(image);
    const res = await this.request(registry, `/v2/${name}/manifests/${reference}`, {
      headers: { accept: MANIFEST_TYPES },
      scope: `repository:${name}:pull`,
    });
    if (res.status === 404) return null;
    if (!res.ok) throw registryError(res, `reading ${image}:${reference}`);
    const body = Buffer.from(await res.arrayBuffer());
    return {
      body,
      mediaType: res.headers.get('content-type') ?? 'application/vnd.docker.distribution.manifest.v2+json',
      digest: res.headers.get('docker-content-digest') ?? '',
    };
  }

  /** Stores a manifest under a tag; answers the digest the registry computed. */
  async putManifest(image: string, tag: string, manifest: Manifest): Promise<string> {
    const { registry, name } = parseImage(image);
    const res = await this.request(registry, `/v2/${name}/manifests/${tag}`, {
      method: 'PUT',
      headers: { 'content-type': manifest.mediaType },
      body: new Uint8Array(manifest.body),
      scope: `repository:${name}:pull,push`,
    });
    if (!res.ok) throw registryError(res, `tagging ${image}:${tag}`);
    await res.body?.cancel();
    return res.headers.get('docker-content-digest') ?? manifest.digest;
  }

  async tags(image: string): Promise<string[]> {
    const { registry, name } = parseImage(image);
    const res = await this.request(registry, `/v2/${name}/tags/list`, { scope: `repository:${name}:pull` });
    if (res.status === 404) return [];
    if (!res.ok) throw registryError(res, `listing tags of ${image}`);
    const body = (await res.json()) as { tags?: string[] | null };
    return body.tags ?? [];
  }

  /** Deletes a manifest (and so every tag pointing at it); needs `storage.delete.enabled`. */
  async deleteManifest(image: string, digest: string): Promise<void> {
    const { registry, name } = parseImage(image);
    const res = await this.request(registry, `/v2/${name}/manifests/${digest}`, {
      method: 'DELETE',
      scope: `repository:${name}:delete`,
    });
    await res.body?.cancel();
    if (!res.ok && res.status !== 404) throw registryError(res, `deleting ${image}@${digest}`);
  }
}

function registryError(res: Response, what: string): BuildError {
  const auth = res.status === 401 || res.status === 403;
  return new BuildError(auth ? 'registry_auth' : 'push_failed', `registry answered ${res.status} ${res.statusText} ${what}`, res.status >= 500);
}
