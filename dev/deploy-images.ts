import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const TEST_REPOSITORY = '127.0.0.1:5000/slipway-test/deploy-app';

export interface TestImage {
  repository: string;
  tag: string;
  digest: string;
}

/**
 * A tiny busybox httpd app answering `version` on port 8080, built locally FROM the registry's busybox
 * and pushed to 127.0.0.1:5000. Its HEALTHCHECK connects with `nc` (busybox `wget -T` crashes).
 * A `broken` app listens on 9090 instead, so its health check never passes.
 */
export async function buildTestImage(version: string, opts: { broken?: boolean; repository?: string } = {}): Promise<TestImage> {
  const repository = opts.repository ?? TEST_REPOSITORY;
  const tag = `${version}-${process.pid}`;
  const dir = await mkdtemp(join(tmpdir(), 'slipway-deploy-img-'));
  try {
    const port = opts.broken ? 9090 : 8080;
    await writeFile(
      join(dir, 'Dockerfile'),
      [
        'FROM 127.0.0.1:5000/slipway/busybox:latest',
        `RUN mkdir -p /www && echo ${version} > /www/index.html`,
        'HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD ["sh", "-c", "echo | nc 127.0.0.1 8080 >/dev/null"]',
        'LABEL io.slipway.kind=deploy io.slipway.test=deploy',
        'EXPOSE 8080',
        `CMD ["httpd", "-f", "-p", "${port}", "-h", "/www"]`,
        '',
      ].join('\n'),
    );
    const ref = `${repository}:${tag}`;
    await run('docker', ['build', '-q', '-t', ref, dir]);
    await run('docker', ['push', ref]);
    const { stdout } = await run('docker', ['image', 'inspect', '--format', '{{json .RepoDigests}}', ref]);
    const digests = JSON.parse(stdout) as string[];
    const match = digests.find((d) => d.startsWith(`${repository}@`));
    if (!match) throw new Error(`no registry digest for ${ref}: ${stdout}`);
    return { repository, tag, digest: match.slice(match.indexOf('@') + 1) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Removes the local tags of the test images (the registry copies are removed by `removeFromRegistry`). */
export async function removeTestImages(images: TestImage[]): Promise<void> {
  for (const img of images) {
    await run('docker', ['image', 'rm', '-f', `${img.repository}:${img.tag}`]).catch(() => undefined);
    await removeFromRegistry(img).catch(() => undefined);
  }
}

async function removeFromRegistry(img: TestImage): Promise<void> {
  const [host, ...rest] = img.repository.split('/');
  await fetch(`http://${host}/v2/${rest.join('/')}/manifests/${img.digest}`, { method: 'DELETE' });
}
