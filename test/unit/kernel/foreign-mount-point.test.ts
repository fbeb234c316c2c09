/**
 * refuseForeignMountPoint on the real kernel, on every mount layer: a held directory that is the
 * root of a mount that is not shared is refused; a plain directory or a shared mount point is
 * not. Decided on what the descriptor holds, not on what the name shows by the time of the check.
 * And what each layer answers about a path that is gone, and about a mount the host put over an
 * adopted directory.
 */
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { umount2 } from '../../../src/system/kernel/calls.js';
import { ForeignMountPointError, type Mounts } from '../../../src/system/mounts.js';
import {
  bindByPath,
  describeInNamespace,
  dirIn,
  mountsAtPath,
  scratch,
  setPropagation,
  tmpfsAt,
  MOUNT_LAYERS,
} from './namespace.js';

let base: string;
let cleanup: () => void;
beforeEach(() => ({ base, cleanup } = scratch()));
afterEach(() => cleanup());

/** What refuseForeignMountPoint says of `dir` held now, after `meanwhile` ran. */
async function verdict(mounts: Mounts, dir: string, meanwhile = () => {}): Promise<string> {
  const held = await mounts.holdDirectory(dir);
  try {
    meanwhile();
    await mounts.refuseForeignMountPoint(held);
    return 'adoptable';
  } catch (error) {
    if (error instanceof ForeignMountPointError) return `refused: ${error.propagation}`;
    throw error;
  } finally {
    held.release();
  }
}

describeInNamespace.each(MOUNT_LAYERS)('%s', (_name, make) => {
  let mounts: Mounts;
  beforeEach(() => (mounts = make()));

  it('a plain directory and a shared mount point are adoptable; a private or unbindable one is not', async () => {
    expect(await verdict(mounts, dirIn(base, 'plain'))).toBe('adoptable');
    const shared = dirIn(base, 'shared');
    tmpfsAt(shared, 'sp-shared');
    setPropagation(shared, 'shared');
    expect(await verdict(mounts, shared)).toBe('adoptable');
    const own = dirIn(base, 'private');
    tmpfsAt(own, 'sp-private');
    expect(await verdict(mounts, own)).toBe('refused: private');
    const unbindable = dirIn(base, 'unbindable');
    tmpfsAt(unbindable, 'sp-unbindable');
    setPropagation(unbindable, 'unbindable');
    expect(await verdict(mounts, unbindable)).toBe('refused: unbindable');
  });

  it('a directory whose name is swapped for a private mount point after it was held is still adoptable', async () => {
    const dir = dirIn(base, 'swapped');
    const answer = await verdict(mounts, dir, () => {
      renameSync(dir, `${dir}.old`);
      dirIn(base, 'swapped');
      tmpfsAt(dir, 'sp-swapped-in');
    });
    // The held directory (now swapped.old) is no mount point; the name would have said private.
    expect(answer).toBe('adoptable');
  });

  it('a mount point detached after it was held is refused as detached, though its name shows none now', async () => {
    for (const shared of [false, true]) {
      const dir = dirIn(base, `detached-${String(shared)}`);
      tmpfsAt(dir, 'sp-detached');
      if (shared) setPropagation(dir, 'shared');
      const answer = await verdict(mounts, dir, () => umount2(dir, { detach: true }));
      expect(answer).toBe('refused: detached');
    }
  });

  it('decides on the mount held: one stacked over it after the hold changes nothing', async () => {
    const dir = dirIn(base, 'stacked');
    tmpfsAt(dir, 'sp-below');
    setPropagation(dir, 'shared');
    expect(await verdict(mounts, dir, () => tmpfsAt(dir, 'sp-over'))).toBe('adoptable');
    const other = dirIn(base, 'stacked-private');
    tmpfsAt(other, 'sp-below');
    expect(
      await verdict(mounts, other, () => {
        tmpfsAt(other, 'sp-over');
        setPropagation(other, 'shared');
      }),
    ).toBe('refused: private');
  });

  it('a private bind alias and a private mount under a shared one are refused; what is in the shared one is not', async () => {
    const target = dirIn(base, 'target');
    const alias = dirIn(base, 'alias');
    bindByPath(target, alias);
    expect(await verdict(mounts, alias)).toBe('refused: private');
    const parent = dirIn(base, 'parent');
    tmpfsAt(parent, 'sp-parent');
    setPropagation(parent, 'shared');
    const child = dirIn(parent, 'child');
    tmpfsAt(child, 'sp-child');
    setPropagation(child, 'private');
    expect(await verdict(mounts, child)).toBe('refused: private');
    expect(await verdict(mounts, parent)).toBe('adoptable');
    expect(await verdict(mounts, dirIn(parent, 'plain'))).toBe('adoptable');
  });
});

describeInNamespace.each(MOUNT_LAYERS)('%s: a path that is gone', (_name, make) => {
  it('shows nothing, detaches nothing and is no error; removeMountPoint never deletes a directory with files', async () => {
    const mounts = make();
    const gone = `${base}/gone`;
    expect(await mounts.showsDirectory(gone, base)).toBe(false);
    expect(await mounts.showsDevice(gone, '0:1')).toBe(false);
    await expect(mounts.removeMountPoint(gone)).resolves.toBeUndefined();
    const nothing = { detached: [], lazy: [] };
    expect(await mounts.detachView(gone)).toEqual(nothing);
    // A directory that is there but no mount point: no view to detach, and what is mounted
    // inside it (not the view's) stays.
    const plain = dirIn(base, 'plain');
    tmpfsAt(dirIn(plain, 'inside'), 'sp-inside');
    expect(await mounts.detachView(plain)).toEqual(nothing);
    expect(mountsAtPath(`${plain}/inside`)).toHaveLength(1);
    expect(await mounts.detachAll(gone, { includeSelf: true })).toEqual(nothing);
    writeFileSync(`${base}/file`, '');
    expect(await mounts.detachAll(`${base}/file/below`, { includeSelf: false })).toEqual(nothing);
    const full = dirIn(base, 'full/child');
    await expect(mounts.removeMountPoint(`${base}/full`)).resolves.toBeUndefined();
    expect(existsSync(full)).toBe(true);
    await mounts.removeMountPoint(full);
    expect(existsSync(full)).toBe(false);
  });
});

describeInNamespace.each(MOUNT_LAYERS)('%s: a mount over an adopted directory', (_name, make) => {
  it('shows in the view, is what ensureSharedMount answers, and is never peeled off', async () => {
    const mounts = make();
    const adopted = dirIn(base, 'srv/over');
    const target = `${base}/mnt/o`;
    await mounts.ensureSharedMount({ kind: 'adopt', directory: adopted }, target, 'rshared');
    tmpfsAt(adopted, 'sp-host-over'); // the host's, over the directory: it reaches the view
    expect(mountsAtPath(target)).toHaveLength(2);
    const top = await mounts.ensureSharedMount(
      { kind: 'adopt', directory: adopted },
      target,
      'rshared',
    );
    const hostOver = mountsAtPath(adopted).at(-1);
    expect([top.fsType, top.device]).toEqual(['tmpfs', hostOver?.device]);
    expect(mountsAtPath(target)).toHaveLength(2);
    expect(hostOver?.source).toBe('sp-host-over');
  });
});
