/**
 * stackAt: the mounts at a mount point, read by identity (statx, then statmount of the mount and
 * of those beneath it at the same place) without the mount table; undefined where the layer can
 * only tell from the table (the mountinfo fallback, mount(8)).
 */
import { symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { mount } from '../../../src/system/kernel/calls.js';
import { MountSystem } from '../../../src/system/mounts.js';
import { SyscallMounts } from '../../../src/system/syscall-mounts.js';
import { describeInNamespace, mountsAtPath, scratch, dirIn, tmpfsAt } from './namespace.js';

let base: string;
let cleanup: () => void;
beforeEach(() => ({ base, cleanup } = scratch()));
afterEach(() => cleanup());

const dir = (name: string) => dirIn(base, name);

describeInNamespace('stackAt', () => {
  const byId = () => new SyscallMounts({ fallback: false });

  it('has none where nothing is mounted, nothing exists, or a symlink or a file is in the way', async () => {
    const plain = dir('plain');
    symlinkSync(plain, path.join(base, 'link'));
    writeFileSync(path.join(base, 'file'), '');
    const mounts = byId();
    expect(mounts.tree.mode).toBe('listmount');
    expect(await mounts.stackAt(plain)).toEqual([]);
    expect(await mounts.stackAt(path.join(base, 'missing'))).toEqual([]);
    expect(await mounts.stackAt(path.join(base, 'link'))).toEqual([]);
    expect(await mounts.stackAt(path.join(base, 'file'))).toEqual([]);
  });

  it('gives the mount at a mount point as mountinfo shows it: ID, type, device, propagation', async () => {
    const target = dir('one');
    tmpfsAt(target, 'sp-one');
    mount(null, target, null, 1 << 20); // MS_SHARED
    const [shown] = mountsAtPath(target);
    const stack = await byId().stackAt(target);
    expect(stack).toHaveLength(1);
    expect(stack?.[0]).toMatchObject({
      id: shown?.id,
      mountPoint: target,
      fsType: 'tmpfs',
      device: shown?.device,
      sharedGroup: shown?.sharedGroup,
    });
    expect(shown?.sharedGroup).toBeDefined();
  });

  it('gives a stack bottom first', async () => {
    const target = dir('stacked');
    tmpfsAt(target, 'sp-bottom');
    tmpfsAt(target, 'sp-top');
    const shown = mountsAtPath(target);
    expect(shown.map((e) => e.source)).toEqual(['sp-bottom', 'sp-top']);
    const stack = await byId().stackAt(target);
    expect(stack?.map((e) => e.id)).toEqual(shown.map((e) => e.id));
  });

  it('is undefined on the mountinfo fallback and with mount(8): the snapshot answers there', async () => {
    const target = dir('one');
    tmpfsAt(target, 'sp-one');
    expect(await new SyscallMounts({ fallback: true }).stackAt(target)).toBeUndefined();
    expect(await new MountSystem().stackAt()).toBeUndefined();
  });
});
