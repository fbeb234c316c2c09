/** The host's mount table (this process's, which is the host's), and clean-up of mounts. */
import { execa } from 'execa';
import { readFile } from 'node:fs/promises';
import {
  isWithin,
  mountsBelow,
  parseMountinfo,
  type MountEntry,
} from '../../src/system/mountinfo.js';

export async function hostMountTable(): Promise<MountEntry[]> {
  return parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8'));
}

/**
 * A mount's `root` (the path inside its filesystem) as a path of this host: mountinfo gives it
 * relative to the filesystem, so when this host's / is itself a subdirectory of its filesystem
 * (an engine root of test/engines, a btrfs subvolume) that prefix is taken off.
 */
export async function hostPathOfRoot(entry: MountEntry): Promise<string> {
  const table = await hostMountTable();
  const slash = table.filter((e) => e.mountPoint === '/').at(-1);
  if (!slash || slash.root === '/' || slash.device !== entry.device) return entry.root;
  return isWithin(entry.root, slash.root) ? entry.root.slice(slash.root.length) || '/' : entry.root;
}

/** Mounts whose mount point is exactly `target`, bottom of the stack first. */
export async function hostMountsAt(target: string): Promise<MountEntry[]> {
  return (await hostMountTable()).filter((e) => e.mountPoint === target);
}

/** Mounts at `dir` or beneath it. */
export async function hostMountsWithin(dir: string): Promise<MountEntry[]> {
  return (await hostMountTable()).filter((e) => isWithin(e.mountPoint, dir));
}

export async function mountTmpfs(target: string, sizeKb = 1024): Promise<void> {
  await execa('mount', [
    '-t',
    'tmpfs',
    '-o',
    `size=${sizeKb}k,mode=0755`,
    'sharedprop-e2e',
    target,
  ]);
}

/**
 * Mounts a tmpfs at `target` and writes `text` into `target/file`, from a mount namespace of its
 * own (`unshare -m`, propagation unchanged): what reaches the host got there by propagation.
 */
export async function mountTmpfsElsewhere(
  target: string,
  file: string,
  text: string,
): Promise<void> {
  await execa('unshare', [
    '-m',
    '--propagation',
    'unchanged',
    'sh',
    '-c',
    'mount -t tmpfs sp-elsewhere "$1" && echo "$3" > "$1/$2"',
    'sh',
    target,
    file,
    text,
  ]);
}

/**
 * What `ip netns add NAME` does, from a mount namespace of its own (an agent's container): a new
 * network namespace kept alive by a bind of its nsfs file at `file`, which propagates out.
 */
export async function addNetnsElsewhere(file: string): Promise<void> {
  await execa('unshare', [
    '-m',
    '--propagation',
    'unchanged',
    'sh',
    '-c',
    ': > "$1" && unshare --net="$1" true',
    'sh',
    file,
  ]);
}

export async function unmount(target: string): Promise<void> {
  await execa('umount', [target]);
}

/**
 * Detaches every mount at or beneath `dir`, deepest first; a busy one is detached lazily.
 * Returns the mount points still there afterwards (none, unless something keeps re-mounting).
 */
export async function unmountEverythingUnder(dir: string): Promise<string[]> {
  for (let pass = 0; pass < 10; pass++) {
    const entries = await hostMountsWithin(dir);
    if (entries.length === 0) return [];
    const order = [...mountsBelow(entries, dir), ...entries.filter((e) => e.mountPoint === dir)];
    for (const entry of order) {
      const plain = await execa('umount', [entry.mountPoint], { reject: false });
      if (plain.exitCode !== 0) await execa('umount', ['-l', entry.mountPoint], { reject: false });
    }
  }
  return (await hostMountsWithin(dir)).map((e) => e.mountPoint);
}
