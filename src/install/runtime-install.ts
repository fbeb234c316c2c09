/**
 * Installing the runtime wrapper for dockerd: the binary goes to DIR/sharedprop-runtime, and
 * daemon.json gets `runtimes.sharedprop.path`; dockerd rereads its runtimes on SIGHUP. Every
 * write is atomic (write-file-atomic: temporary file, fsync, rename), daemon.json is backed up
 * before it changes,
 * and a second run that has nothing to change changes nothing and signals nobody.
 */
import { lstat, mkdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import {
  addRuntime,
  formatDaemonJson,
  parseDaemonJson,
  removeRuntime,
  type DaemonConfig,
  type DaemonJsonEdit,
} from './daemon-json.js';

export const BINARY_NAME = 'sharedprop-runtime';
/** The compiled wrapper that the sh front (BINARY_NAME) hands `create` to; built as BINARY-create. */
export const COMPANION_SUFFIX = '-create';
export const BACKUP_SUFFIX = '.sharedprop-backup';

export interface RuntimeTarget {
  /** Where the binary is installed. */
  dir: string;
  daemonJson: string;
  /** dockerd's pidfile, for the SIGHUP that makes it reread daemon.json. */
  pidfile: string;
}

/** What happened to dockerd. */
export type Reload =
  { kind: 'not-needed' } | { kind: 'signalled'; pid: number } | { kind: 'skipped'; reason: string };

export interface InstallReport {
  binaryPath: string;
  binaryChanged: boolean;
  daemonJsonChanged: boolean;
  /** The backup of the previous daemon.json, when there was one and it changed. */
  backup?: string;
  reload: Reload;
}

export interface UninstallReport {
  binaryPath: string;
  binaryRemoved: boolean;
  daemonJsonChanged: boolean;
  backup?: string;
  reload: Reload;
}

const isMissing = (error: unknown) => (error as NodeJS.ErrnoException).code === 'ENOENT';

interface DaemonJsonFile {
  config: DaemonConfig;
  /** The file's text and mode, if it exists. */
  existing?: { text: string; mode: number };
}

async function readDaemonJson(file: string): Promise<DaemonJsonFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (isMissing(error)) return { config: {} };
    throw error;
  }
  const { mode } = await stat(file);
  return { config: parseDaemonJson(text, file), existing: { text, mode: mode & 0o7777 } };
}

/** Backs up the old daemon.json (if any), then writes the new one. */
async function writeDaemonJson(
  file: string,
  current: DaemonJsonFile,
  edit: DaemonJsonEdit,
): Promise<string | undefined> {
  let backup: string | undefined;
  if (current.existing) {
    backup = file + BACKUP_SUFFIX;
    await writeFileAtomic(backup, current.existing.text, { mode: current.existing.mode });
  } else {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  }
  await writeFileAtomic(file, formatDaemonJson(edit.config), {
    mode: current.existing?.mode ?? 0o644,
  });
  return backup;
}

/**
 * Puts a copy of `binary` at `target` with mode 0755, atomically (write-file-atomic: temporary
 * file, fsync, rename): a running wrapper keeps its old file, a new one sees the new file.
 * Returns false when `target` was already that.
 */
async function installBinary(binary: string, target: string): Promise<boolean> {
  const source = await stat(binary).catch(() => undefined);
  if (!source?.isFile()) throw new Error(`${binary} is not a file (build it with make runtime)`);
  const content = await readFile(binary);
  const existing = await stat(target).catch(() => undefined);
  if (
    existing?.isFile() &&
    (existing.mode & 0o7777) === 0o755 &&
    content.equals(await readFile(target))
  ) {
    return false;
  }
  await mkdir(path.dirname(target), { recursive: true, mode: 0o755 });
  await writeFileAtomic(target, content, { mode: 0o755, fsync: true });
  return true;
}

/** Sends SIGHUP to the dockerd whose pid is in `pidfile`, if there is one running. */
export async function reloadDockerd(pidfile: string): Promise<Reload> {
  let text: string;
  try {
    text = await readFile(pidfile, 'utf8');
  } catch (error) {
    if (isMissing(error))
      return { kind: 'skipped', reason: `no ${pidfile}: dockerd is not running` };
    throw error;
  }
  const pid = Number(text.trim());
  if (!Number.isSafeInteger(pid) || pid <= 1) {
    return { kind: 'skipped', reason: `${pidfile} does not hold a process id` };
  }
  let comm: string;
  try {
    comm = (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
  } catch {
    return { kind: 'skipped', reason: `dockerd (pid ${pid} in ${pidfile}) is not running` };
  }
  // A stale pidfile may name an unrelated process now; SIGHUP would likely kill it.
  if (!comm.startsWith('dockerd')) {
    return {
      kind: 'skipped',
      reason: `pid ${pid} in ${pidfile} is ${comm}, not dockerd; not signalled`,
    };
  }
  try {
    process.kill(pid, 'SIGHUP');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') return { kind: 'skipped', reason: `dockerd (pid ${pid}) has exited` };
    throw error;
  }
  return { kind: 'signalled', pid };
}

/** Installs the binary and registers it in daemon.json. */
export async function installRuntime(
  options: RuntimeTarget & { binary: string },
): Promise<InstallReport> {
  const binaryPath = path.resolve(options.dir, BINARY_NAME);
  // Read and check daemon.json first: a file we cannot understand stops us before any change.
  const current = await readDaemonJson(options.daemonJson);
  const edit = addRuntime(current.config, binaryPath);
  // The companion first: the front must never be there without the wrapper it hands over to.
  const companion = `${options.binary}${COMPANION_SUFFIX}`;
  const companionChanged = (await stat(companion).catch(() => undefined))
    ? await installBinary(companion, `${binaryPath}${COMPANION_SUFFIX}`)
    : false;
  const binaryChanged = (await installBinary(options.binary, binaryPath)) || companionChanged;
  if (!edit.changed) {
    return { binaryPath, binaryChanged, daemonJsonChanged: false, reload: { kind: 'not-needed' } };
  }
  const backup = await writeDaemonJson(options.daemonJson, current, edit);
  const reload = await reloadDockerd(options.pidfile);
  return { binaryPath, binaryChanged, daemonJsonChanged: true, backup, reload };
}

/** Unregisters the runtime from daemon.json, then removes the binary. */
export async function uninstallRuntime(options: RuntimeTarget): Promise<UninstallReport> {
  const binaryPath = path.resolve(options.dir, BINARY_NAME);
  const current = await readDaemonJson(options.daemonJson);
  const edit = removeRuntime(current.config);
  let backup: string | undefined;
  let reload: Reload = { kind: 'not-needed' };
  if (edit.changed) {
    backup = await writeDaemonJson(options.daemonJson, current, edit);
    reload = await reloadDockerd(options.pidfile);
  }
  const binaryRemoved = (await lstat(binaryPath).catch(() => undefined)) !== undefined;
  if (binaryRemoved) await rm(binaryPath, { force: true });
  await rm(`${binaryPath}${COMPANION_SUFFIX}`, { force: true });
  return { binaryPath, binaryRemoved, daemonJsonChanged: edit.changed, backup, reload };
}
