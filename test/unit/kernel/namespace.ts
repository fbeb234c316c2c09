/**
 * For the kernel tests: they make real mounts, so they run only inside a user and mount
 * namespace of their own (`unshare --user --map-root-user --mount --propagation private`), where
 * every mount vanishes with the namespace. Outside one they are skipped, loudly.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { close, moveMount, openDirectory, umount2 } from '../../../src/system/kernel/calls.js';
import { newTmpfs } from '../../../src/system/kernel/tmpfs.js';
import { parseMountinfo, type MountEntry } from '../../../src/system/mountinfo.js';

/** True inside a user namespace (its uid map is not the initial namespace's whole range). */
export function inOwnNamespace(): boolean {
  const map = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
  return !(map[0] === '0' && map[1] === '0' && map[2] === '4294967295');
}

export const describeInNamespace: jest.Describe = inOwnNamespace()
  ? describe
  : (((name: string) => {
      console.warn(`${name}: skipped (run inside unshare --user --map-root-user --mount)`);
      describe.skip(name, () => it('runs inside a namespace', () => undefined));
    }) as unknown as jest.Describe);

/** A scratch directory on a tmpfs of its own (so that the whole test lives on our mounts). */
export function scratch(): { base: string; cleanup: () => void } {
  const base = mkdtempSync(path.join(tmpdir(), 'sp-kernel-'));
  const fd = openDirectory(base);
  const tmpfs = newTmpfs('size=16m,mode=0755');
  try {
    moveMount(tmpfs, fd);
  } finally {
    close(tmpfs);
    close(fd);
  }
  return {
    base,
    cleanup: () => {
      umount2(base, { detach: true });
      rmSync(base, { recursive: true, force: true });
    },
  };
}

export function mountinfo(): MountEntry[] {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}

export function mountsAtPath(target: string): MountEntry[] {
  return mountinfo().filter((e) => e.mountPoint === target);
}
