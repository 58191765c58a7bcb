import path from 'node:path';

/** Everything builders make on disk lives under `<data dir>/builders`. */
export const buildersRoot = (dataDir: string) => path.join(path.resolve(dataDir), 'builders');
/** Per-build workspaces (checkout, run.json); the reaper removes runs whose owner process is gone. */
export const runsDir = (dataDir: string) => path.join(buildersRoot(dataDir), 'runs');
/** Dedicated engine slots (exec root, socket, pidfile, temporary data root). Short paths: unix sockets live here. */
export const slotsDir = (root: string) => path.join(root, 'x');
/** Repository cache data roots (`cache: true`). */
export const cacheDir = (root: string) => path.join(root, 'cache');
