import { createReadStream } from 'node:fs';
import { lstat, open, readdir, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { BuildError } from './errors.js';
import { DockerIgnore } from './ignore.js';

/** The largest `.dockerignore` read (the CLI has no limit; a repository's content must not exhaust a worker). */
const MAX_IGNORE_BYTES = 1024 * 1024;

export interface BuildContext {
  /** The tar stream for the Engine API's /build. */
  tar: NodeJS.ReadableStream;
  /** The Dockerfile's path inside the context, with `/` separators. */
  dockerfile: string;
}

/**
 * Packs `context` of the checkout at `root` as a tar, honouring `.dockerignore` the way the
 * docker CLI does (the Dockerfile and .dockerignore are always sent); the checkout's `.git` is left out.
 */
export async function packContext(root: string, context: string, dockerfile: string): Promise<BuildContext> {
  const realRoot = await realpath(root);
  const dir = path.resolve(realRoot, context);
  const realDir = await realpath(dir).catch(() => {
    throw new BuildError('context_invalid', `context ${context} does not exist in the repository`);
  });
  if (!inside(realRoot, realDir)) throw new BuildError('context_invalid', `context ${context} leaves the repository`);
  const dfRel = path.posix.normalize(dockerfile.split(path.sep).join('/'));
  const dfAbs = path.resolve(realDir, dfRel);
  const dfReal = await realpath(dfAbs).catch(() => {
    throw new BuildError('context_invalid', `Dockerfile ${path.posix.join(context, dfRel)} not found at this commit`);
  });
  if (!inside(realDir, dfReal)) throw new BuildError('context_invalid', `Dockerfile ${dockerfile} leaves the context ${context}`);

  const ig = DockerIgnore.parse(await readIgnoreFile(path.join(realDir, '.dockerignore')));
  const hasNegation = ig.hasExclusions;
  const always = new Set([dfRel, '.dockerignore']);

  const files: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(path.join(realDir, rel), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      // The checkout's own .git is never part of the context (as with BuildKit's git contexts).
      if (p === '.git' && rel === '' && realDir === realRoot) continue;
      const ignored = ig.ignores(p) && !always.has(p);
      if (e.isDirectory()) {
        // An ignored directory may still hold files that a `!pattern` brings back.
        if (ignored && !hasNegation) continue;
        if (!ignored) files.push(p);
        await walk(p);
      } else if (!ignored) {
        files.push(p);
      }
    }
  };
  await walk('');

  const pack = tar.pack();
  void (async () => {
    for (const rel of files) {
      const abs = path.join(realDir, rel);
      const st = await lstat(abs);
      const header = { name: rel, mode: st.mode & 0o7777, mtime: st.mtime, uid: 0, gid: 0 };
      if (st.isSymbolicLink()) {
        pack.entry({ ...header, type: 'symlink', linkname: await readlink(abs) });
      } else if (st.isDirectory()) {
        pack.entry({ ...header, type: 'directory' });
      } else if (st.isFile()) {
        const entry = pack.entry({ ...header, type: 'file', size: st.size });
        await pipeline(createReadStream(abs), entry);
      }
    }
    pack.finalize();
  })().catch((err: unknown) => pack.destroy(err as Error));
  return { tar: Readable.from(pack), dockerfile: dfRel };
}

/** The `.dockerignore` text, or '' when there is none; never through a symlink, never more than 1 MiB. */
async function readIgnoreFile(file: string): Promise<string> {
  const st = await lstat(file).catch(() => null);
  if (!st) return '';
  if (!st.isFile()) throw new BuildError('context_invalid', `.dockerignore must be a regular file, not a ${st.isSymbolicLink() ? 'symbolic link' : 'special file'}`);
  if (st.size > MAX_IGNORE_BYTES) throw new BuildError('context_invalid', `.dockerignore is ${st.size} bytes; at most ${MAX_IGNORE_BYTES} are read`);
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(MAX_IGNORE_BYTES + 1);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_IGNORE_BYTES) throw new BuildError('context_invalid', `.dockerignore grew past ${MAX_IGNORE_BYTES} bytes while it was read`);
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
}

function inside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}
