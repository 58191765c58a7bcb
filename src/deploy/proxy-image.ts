import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, realpath, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import tar from 'tar-stream';

const run = promisify(execFile);

export interface ProxyImageOptions {
  /** The HAProxy binary to package (Debian's `haproxy` package puts it here). */
  haproxyBinary?: string;
  /** Image repository for the built image; the tag is derived from the binary's content. */
  repository?: string;
}

/**
 * Builds (once) a minimal image holding the host's HAProxy binary and the shared libraries `ldd` names,
 * with `docker import`: no base image and no registry is needed, so it works on machines that cannot pull.
 * Returns the image reference. The tag is a hash of the packaged files, so a HAProxy upgrade makes a new image.
 */
export async function ensureProxyImage(docker: Docker, opts: ProxyImageOptions = {}): Promise<string> {
  const binary = opts.haproxyBinary ?? '/usr/sbin/haproxy';
  const repository = opts.repository ?? 'slipway/haproxy';
  const files = await collectFiles(binary);
  const hash = createHash('sha256');
  for (const f of files) hash.update(f.path).update(f.data);
  const ref = `${repository}:${hash.digest('hex').slice(0, 16)}`;
  try {
    await docker.getImage(ref).inspect();
    return ref;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
  }
  const pack = tar.pack();
  const dirs = new Set<string>(['etc', 'etc/haproxy', 'tmp', 'run', 'var', 'var/lib', 'var/lib/haproxy']);
  for (const f of files) {
    const parts = f.path.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  for (const d of [...dirs].sort()) pack.entry({ name: `${d}/`, type: 'directory', mode: d === 'tmp' ? 0o1777 : 0o755 });
  pack.entry({ name: 'etc/passwd', mode: 0o644 }, 'root:x:0:0:root:/:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  pack.entry({ name: 'etc/group', mode: 0o644 }, 'root:x:0:\nnogroup:x:65534:\n');
  for (const f of files) pack.entry({ name: f.path.replace(/^\//, ''), mode: f.mode }, f.data);
  pack.finalize();
  const [repo, tag] = [ref.slice(0, ref.lastIndexOf(':')), ref.slice(ref.lastIndexOf(':') + 1)];
  const stream = await docker.importImage(pack as unknown as NodeJS.ReadableStream, {
    repo,
    tag,
    changes: [
      'ENTRYPOINT ["/usr/sbin/haproxy", "-db", "-f", "/etc/haproxy/haproxy.cfg"]',
      'LABEL io.slipway.kind=deploy io.slipway.component=proxy',
    ],
  });
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, output: { error?: string }[]) => {
      const failed = output?.find((o) => o.error);
      if (err || failed) reject(err ?? new Error(`importing the proxy image failed: ${failed?.error}`));
      else resolve();
    });
  });
  return ref;
}

async function collectFiles(binary: string): Promise<{ path: string; data: Buffer; mode: number }[]> {
  const { stdout } = await run('ldd', [binary]);
  const paths = new Set<string>();
  for (const line of stdout.split('\n')) {
    // "libssl.so.3 => /lib/x86_64-linux-gnu/libssl.so.3 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
    const m = /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line);
    if (m) paths.add(m[1]!);
  }
  const files = [{ path: '/usr/sbin/haproxy', source: binary }, ...[...paths].map((p) => ({ path: p, source: p }))];
  return Promise.all(
    files.map(async (f) => {
      const real = await realpath(f.source);
      const [data, st] = await Promise.all([readFile(real), stat(real)]);
      return { path: f.path, data, mode: st.mode & 0o777 };
    }),
  );
}
