/** `sharedprop serve`: wires the driver to the protocol on a Unix socket, and shuts down cleanly. */
import path from 'node:path';
import { createLogger, type Logger } from './log.js';
import { SharedpropDriver } from './driver/sharedprop-driver.js';
import { createApp } from './protocol/app.js';
import { assertSocketFree, listenUnix } from './protocol/unix-server.js';
import { lockDataRoot, lockMountRoot } from './state/data-root-lock.js';
import { DEFAULT_ENGINE_STORAGE, engineStorageRoots } from './system/engine-storage.js';
import { hostMemory } from './system/host-memory.js';
import { createMountLayer, MOUNT_LAYER_ENV, parseMountLayer } from './system/mount-layer.js';
import { tmpfsSizeLimits } from './model/tmpfs-size.js';

export interface ServeOptions {
  socket: string;
  dataRoot: string;
  mountRoot?: string;
  /** Milliseconds that in-flight requests get on SIGTERM. */
  shutdownGraceMs?: number;
  /** Whether `-o path=` may adopt host directories (false in the managed plugin). */
  hostPaths?: boolean;
  /** Make the data root's mount private at start (the managed plugin's /data). */
  privateDataRoot?: boolean;
  /** Host directories never adopted (default: dockerd's and containerd's state). */
  reservedPaths?: readonly string[];
  /** Engine storage roots besides the defaults (a moved data root's `<data-root>/overlay2`). */
  engineStorage?: readonly string[];
  /**
   * The largest tmpfs volume, and the size of one created without `size` (same syntax as
   * `size`, `%` of the host's memory included); at most the host's memory. Absent: the host's
   * memory is the limit and the kernel's default (half the RAM) stays.
   */
  tmpfsMaxSize?: string;
  /** The mount layer (mount-layer.ts): auto (default), mountinfo or mount8. */
  mountLayer?: string;
}

/** HOST_DATA_DIR, when it is an absolute path (the plugin's manifest leaves it empty). */
function hostDataDir(value: string | undefined): string | undefined {
  return value && path.isAbsolute(value)
    ? path.normalize(value).replace(/(.)\/+$/, '$1')
    : undefined;
}

/**
 * Start-up order matters: a second instance must find out that it is one before it changes
 * anything. So: the socket, then the data root's and the mount root's locks, then recovery,
 * then listening; leftovers are deleted last, in the background, because dockerd waits for the
 * socket.
 */
export async function serve(options: ServeOptions, log: Logger = createLogger()): Promise<void> {
  // Checked before anything is touched: a bad value must not start a driver at all.
  const tmpfs = tmpfsSizeLimits(hostMemory(), options.tmpfsMaxSize);
  const mountLayer = parseMountLayer(options.mountLayer ?? process.env[MOUNT_LAYER_ENV]);
  const dataRoot = path.resolve(options.dataRoot);
  const mountRoot = path.resolve(options.mountRoot ?? path.join(dataRoot, 'mounts'));
  const engineStorage = [
    ...new Set([...DEFAULT_ENGINE_STORAGE, ...engineStorageRoots(options.engineStorage ?? [])]),
  ];
  await assertSocketFree(options.socket);
  await lockDataRoot(dataRoot);
  // The same directory cannot be locked twice by one process (a lock per open file).
  if (mountRoot !== dataRoot) await lockMountRoot(mountRoot);
  const driver = new SharedpropDriver({
    dataRoot,
    mountRoot,
    logger: log,
    bootIdFile: process.env.SHAREDPROP_BOOT_ID_FILE,
    hostPaths: options.hostPaths ?? true,
    privateDataRoot: options.privateDataRoot ?? false,
    hostDataRoot: hostDataDir(process.env.HOST_DATA_DIR),
    reservedPaths: options.reservedPaths,
    engineStorage,
    tmpfsSizeLimits: tmpfs,
    mounts: createMountLayer(mountLayer, log),
  });
  await driver.start();
  log.info('engine storage roots: reap=on-unmount takes an overlay only with its upper in one', {
    engineStorage,
  });

  let inFlight = 0;
  const app = createApp(driver, log, { onRequest: (delta) => (inFlight += delta) });
  const server = await listenUnix(app, options.socket);
  log.info('serving the VolumeDriver protocol', { socket: options.socket, pid: process.pid });
  void driver.deleteLeftovers();

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    const grace = options.shutdownGraceMs ?? 8_000;
    log.info('stopping', { signal, inFlight });
    server.close();
    server.closeIdleConnections();
    const deadline = Date.now() + grace;
    while (inFlight > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    server.closeAllConnections();
    const unsaved = driver.unsavedCounts();
    if (unsaved.length > 0) {
      log.error('stopping with mount counts that could not be saved', { volumes: unsaved });
    }
    log.info('stopped', { unfinished: inFlight });
    log.on('finish', () => process.exit(0));
    log.end();
    setTimeout(() => process.exit(0), 500).unref();
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
