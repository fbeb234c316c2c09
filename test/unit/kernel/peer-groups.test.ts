/**
 * Peer groups, in every Mounts implementation on the real kernel (issue 25):
 * - an adopted directory's view cut off from the directory's peer group (a kill between the two
 *   steps of a Remove) is detached in this view only and bound again from the directory;
 * - a directory that is a mount point but not a shared one is refused, never made shared;
 * - a mount root held by a shared mount with a peer in this namespace (a data root bound onto
 *   itself in its parent's peer group) gets a mount of its own, so that each volume is one mount.
 */
import { mkdirSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { ForeignMountPointError, isCutOff, type Mounts } from '../../../src/system/mounts.js';
import {
  describeInNamespace,
  mountinfo,
  mountsAtPath,
  scratch,
  dirIn,
  bindByPath,
  tmpfsAt,
  bySource,
  setPropagation,
  MOUNT_LAYERS,
} from './namespace.js';

let base: string;
let cleanup: () => void;
beforeEach(() => ({ base, cleanup } = scratch()));
afterEach(() => cleanup());

const dir = (name: string) => dirIn(base, name);
const propagate = (target: string, propagation: 'shared' | 'private' | 'slave') =>
  setPropagation(target, propagation, true);
const points = (source: string) =>
  bySource(source)
    .map((e) => e.mountPoint)
    .sort();
const groupAt = (target: string) => mountsAtPath(target).at(-1)?.sharedGroup;

describe('isCutOff', () => {
  it('is true only for one view in none of the directory’s groups', () => {
    expect(isCutOff([{ sharedGroup: 3 }], [{ sharedGroup: 3 }])).toBe(false);
    expect(isCutOff([{ sharedGroup: 3 }], [{}, { sharedGroup: 3 }])).toBe(false);
    expect(isCutOff([{ sharedGroup: 4 }], [{ sharedGroup: 3 }])).toBe(true);
    expect(isCutOff([{}], [{ sharedGroup: 3 }])).toBe(true);
    expect(isCutOff([{}], [{}])).toBe(false); // no group on either side: the same (none)
    expect(isCutOff([], [{ sharedGroup: 3 }])).toBe(false);
    expect(isCutOff([{ sharedGroup: 4 }, { sharedGroup: 5 }], [{ sharedGroup: 3 }])).toBe(false);
  });
});

describeInNamespace.each(MOUNT_LAYERS)('%s', (_name, make) => {
  let mounts: Mounts;
  beforeEach(() => (mounts = make()));

  describe('an adopted directory’s view', () => {
    async function adopted() {
      const hd = dir('hd');
      tmpfsAt(dir('hd/ns'), 'sp-ns');
      const target = path.join(base, 'mnt/vol');
      const view = await mounts.ensureSharedMount(
        { kind: 'adopt', directory: hd },
        target,
        'rshared',
      );
      return { hd, target, view };
    }

    it('kept as it is when the directory is covered (keepView): nothing is done by the name', async () => {
      const hd = dir('parent/hd');
      const target = path.join(base, 'mnt/vol');
      const view = await mounts.ensureSharedMount(
        { kind: 'adopt', directory: hd },
        target,
        'rshared',
      );
      // The name now reaches another directory: had anything been done by it, it would show.
      renameSync(path.join(base, 'parent'), path.join(base, 'parent.old'));
      mkdirSync(hd, { recursive: true });
      const kept = await mounts.ensureSharedMount(
        { kind: 'adopt', directory: hd, keepView: true },
        target,
        'rshared',
      );
      expect(kept.id).toBe(view.id);
      expect(mountsAtPath(target).map((e) => e.id)).toEqual([view.id]);
      expect(mountsAtPath(hd)).toEqual([]);
      const gone = path.join(base, 'mnt/none');
      await expect(
        mounts.ensureSharedMount({ kind: 'adopt', directory: hd, keepView: true }, gone, 'shared'),
      ).rejects.toThrow(`the view at ${gone} is gone`);
      expect(mountsAtPath(hd)).toEqual([]);
    });

    it('in the directory’s group is kept as it is (the same mount)', async () => {
      const { hd, target, view } = await adopted();
      const again = await mounts.ensureSharedMount(
        { kind: 'adopt', directory: hd },
        target,
        'rshared',
      );
      expect(again.id).toBe(view.id);
      expect(mountsAtPath(target).map((e) => e.id)).toEqual([view.id]);
    });

    it.each(['private', 'shared in a group of its own'])(
      'cut off (%s) is detached in this view only and bound again in the directory’s group',
      async (how) => {
        const { hd, target } = await adopted();
        const dirGroup = groupAt(hd);
        const before = points('sp-ns');
        expect(before).toContain(path.join(target, 'ns'));
        propagate(target, 'private');
        if (how !== 'private') propagate(target, 'shared');
        expect(groupAt(target)).not.toBe(dirGroup);

        const joined = await mounts.ensureSharedMount(
          { kind: 'adopt', directory: hd },
          target,
          'rshared',
        );
        expect(mountsAtPath(target)).toHaveLength(1);
        expect(joined.sharedGroup).toBe(dirGroup);
        expect(groupAt(target)).toBe(dirGroup);
        // The directory kept its own submount (detached in the view only), and the view shows it.
        expect(points('sp-ns')).toEqual(before);
        tmpfsAt(dir('mnt/vol/late'), 'sp-late');
        expect(mountsAtPath(path.join(hd, 'late'))).toHaveLength(1);
      },
    );
  });

  describe('a directory that is a mount point the driver did not make', () => {
    it.each([
      ['private', (): void => undefined],
      ['slave', (): void => propagate(base, 'shared')],
    ] as const)('(%s) is refused and left as it was', async (propagation, before) => {
      before();
      const hd = dir('hd');
      bindByPath(hd, hd); // joins base's group when that is shared
      propagate(hd, propagation === 'slave' ? 'slave' : 'private');
      const was = mountsAtPath(hd);
      const target = path.join(base, 'mnt/vol');
      const refusal = mounts.ensureSharedMount({ kind: 'adopt', directory: hd }, target, 'rshared');
      await expect(refusal).rejects.toThrow(new ForeignMountPointError(hd, propagation));
      await expect(refusal).rejects.toThrow(
        `${hd} is a ${propagation} mount point that sharedprop did not make`,
      );
      expect(mountsAtPath(hd)).toEqual(was);
      expect(mountsAtPath(target)).toEqual([]);
    });
  });

  describe('prepareMountRoot', () => {
    const marker = { name: '.marker', content: 'mine\n' };

    it('gives a mount root whose data root is in its parent’s peer group a mount of its own: one mount per volume', async () => {
      propagate(base, 'shared');
      const data = dir('data');
      bindByPath(data, data); // in base's peer group, as `ip netns` binds /run/netns
      expect(groupAt(data)).toBe(groupAt(base));
      const root = path.join(data, 'mounts');
      await mounts.prepareMountRoot(root, marker);
      expect(readFileSync(path.join(root, marker.name), 'utf8')).toBe(marker.content);
      const own = mountsAtPath(root).filter((e) => e.parentId === mountsAtPath(data)[0]?.id);
      expect(own).toHaveLength(1);
      expect(own[0]?.sharedGroup).toBeDefined();
      expect(own[0]?.sharedGroup).not.toBe(groupAt(base));
      // Again (a restart): nothing more.
      await mounts.prepareMountRoot(root, marker);
      expect(mountsAtPath(root).filter((e) => e.parentId === own[0]?.parentId)).toEqual(own);

      const source = dir('data/volumes/v/_data');
      const target = path.join(root, 'v');
      await mounts.ensureSharedMount({ kind: 'bind', directory: source }, target, 'rshared');
      expect(mountsAtPath(target)).toHaveLength(1);
      tmpfsAt(dir('data/mounts/v/sub'), 'sp-sub');
      expect(bySource('sp-sub')).toHaveLength(1);
      await mounts.detachAll(target, { includeSelf: true });
      expect(mountsAtPath(target)).toEqual([]);
    });

    it.each([
      ['its holder has no peer here', () => propagate(base, 'shared'), false],
      ['its holder is not shared', () => propagate(base, 'private'), true],
    ] as const)('leaves the mount root a plain directory when %s', async (_why, setup, bind) => {
      setup();
      const data = dir('data');
      if (bind) bindByPath(data, data);
      const root = path.join(data, 'mounts');
      await mounts.prepareMountRoot(root, marker);
      expect(mountsAtPath(root)).toEqual([]);
      expect(readFileSync(path.join(root, marker.name), 'utf8')).toBe(marker.content);
    });

    it('leaves it as it is when something is mounted in it already', async () => {
      propagate(base, 'shared');
      const data = dir('data');
      bindByPath(data, data);
      tmpfsAt(dir('data/mounts/old'), 'sp-old');
      const before = mountinfo().filter((e) => e.mountPoint.startsWith(path.join(data, 'mounts')));
      await mounts.prepareMountRoot(path.join(data, 'mounts'), marker);
      expect(mountsAtPath(path.join(data, 'mounts'))).toEqual([]);
      const after = mountinfo().filter((e) => e.mountPoint.startsWith(path.join(data, 'mounts')));
      expect(after).toEqual(before);
    });
  });
});
