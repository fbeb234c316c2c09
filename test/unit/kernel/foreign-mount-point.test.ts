/**
 * refuseForeignMountPoint on the real kernel, on every mount layer: a held directory that is the
 * root of a mount that is not shared is refused; a plain directory or a shared mount point is
 * not. Decided on what the descriptor holds, not on what the name shows by the time of the check.
 */
import { renameSync } from 'node:fs';
import { mountSetattr, openDirectory, umount2, withFd } from '../../../src/system/kernel/calls.js';
import { ForeignMountPointError, type Mounts } from '../../../src/system/mounts.js';
import { describeInNamespace, dirIn, scratch, tmpfsAt, MOUNT_LAYERS } from './namespace.js';

let base: string;
let cleanup: () => void;
beforeEach(() => ({ base, cleanup } = scratch()));
afterEach(() => cleanup());

const setPropagation = (target: string, propagation: 'shared' | 'private' | 'unbindable') =>
  withFd(openDirectory(target), (fd) => mountSetattr(fd, { propagation }));

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

  it('a private mount point detached after it was held is refused, though its name shows none now', async () => {
    const dir = dirIn(base, 'detached');
    tmpfsAt(dir, 'sp-detached');
    const answer = await verdict(mounts, dir, () => umount2(dir, { detach: true }));
    expect(answer).toBe('refused: private');
  });
});
