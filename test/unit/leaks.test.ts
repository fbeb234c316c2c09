/**
 * Unit tier: which submounts count as a dead container's root (src/system/leaks.ts), and the
 * parsing of an overlay's super options that decides it (src/system/overlay-options.ts). The
 * overlay lines are what the kernel prints (6.18, checked by hand): the kernel's octal escapes
 * over the mounter's own backslash escapes.
 */
import {
  dockerStorageRoots,
  DEFAULT_ENGINE_STORAGE,
  engineStorageRoots,
  inEngineStorage,
} from '../../src/system/engine-storage.js';
import { leakReason, noneRunningIn, type RunningRoots } from '../../src/system/leaks.js';
import { parseMountinfoLine, type MountEntry } from '../../src/system/mountinfo.js';
import {
  overlayLayers,
  splitOverlayList,
  superOptionPairs,
  unescapeOverlayPath,
} from '../../src/system/overlay-options.js';

const DOCKER = '/var/lib/docker/overlay2';
const CONTAINERD = '/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots';
const ID = '3f1c0a9e5b7d2c4e6f8a0b1c3d5e7f9a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e';

/** A bind of `/etc` of an overlay with these super options, at `/vol/etc`. */
function overlay(superOptions: string, device = '0:61'): MountEntry {
  return parseMountinfoLine(
    `92 91 ${device} /etc /vol/etc rw,relatime shared:302 - overlay overlay ${superOptions}`,
  );
}
const dockerOverlay = (id = ID, root = DOCKER) =>
  overlay(
    `rw,lowerdir=${root}/l/ABC:${root}/l/DEF,upperdir=${root}/${id}/diff,workdir=${root}/${id}/work,index=off`,
  );
const none = noneRunningIn(DEFAULT_ENGINE_STORAGE);

describe('overlay super options', () => {
  it('splits at literal commas only and undoes the kernel octal escapes per option', () => {
    expect(superOptionPairs('rw,lowerdir=/a\\054b,upperdir=/u\\040v,userxattr')).toEqual([
      ['rw', undefined],
      ['lowerdir', '/a,b'],
      ['upperdir', '/u v'],
      ['userxattr', undefined],
    ]);
    expect(superOptionPairs('x\\075y=1=2')).toEqual([['x=y', '1=2']]);
    // Empty options (a trailing or doubled comma) are no pairs.
    expect(superOptionPairs(',rw,,userxattr,')).toEqual([
      ['rw', undefined],
      ['userxattr', undefined],
    ]);
    expect(superOptionPairs('')).toEqual([]);
    // A key may be empty; the first '=' still ends it.
    expect(superOptionPairs('=x,a==b')).toEqual([
      ['', 'x'],
      ['a', '=b'],
    ]);
  });

  it("undoes overlay's own backslash escapes", () => {
    expect(unescapeOverlayPath('/a\\,b\\:c\\\\d')).toBe('/a,b:c\\d');
    expect(unescapeOverlayPath('/plain')).toBe('/plain');
    // A backslash at the very end escapes nothing, and is dropped as the kernel drops it.
    expect(unescapeOverlayPath('/end\\')).toBe('/end');
    expect(unescapeOverlayPath('')).toBe('');
  });

  it('splits a lower layer list at unescaped colons, and drops the empty ones of `::`', () => {
    expect(splitOverlayList('/l1:/l\\:2:/l3\\\\:/l4')).toEqual(['/l1', '/l:2', '/l3\\', '/l4']);
    expect(splitOverlayList('/l1::/data')).toEqual(['/l1', '/data']);
  });

  it('reads escaped spaces, commas, colons, newlines and backslashes as the kernel prints them', () => {
    // mount -o 'lowerdir=/t/lo\,1:/t/lo\:2:/t/lo3,upperdir=/t/up per\,x\:y,workdir=/t/wo rk'
    const printed =
      'rw,lowerdir=/t/lo\\134\\0541:/t/lo\\134:2:/t/lo3,upperdir=/t/up\\040per\\134\\054x\\134:y,workdir=/t/wo\\040rk,uuid=on';
    expect(overlayLayers(printed)).toEqual({
      lowerdirs: ['/t/lo,1', '/t/lo:2', '/t/lo3'],
      upperdir: '/t/up per,x:y',
      workdir: '/t/wo rk',
    });
    expect(
      overlayLayers('rw,lowerdir=/l,upperdir=/t/u\\012n,workdir=/t/w\\134\\134\\134\\134b'),
    ).toEqual({
      lowerdirs: ['/l'],
      upperdir: '/t/u\nn',
      workdir: '/t/w\\\\b',
    });
  });

  it('collects lowerdir+ and datadir+ layers; a read-only overlay has no upper', () => {
    expect(overlayLayers('ro,lowerdir+=/a\\134:b,datadir+=/d,redirect_dir=on')).toEqual({
      lowerdirs: ['/a:b', '/d'],
    });
  });

  it('an upper or work directory given twice is no upper at all', () => {
    expect(overlayLayers(`rw,upperdir=/x/u,workdir=/x/w,upperdir=/y/u`)).toEqual({
      lowerdirs: [],
      workdir: '/x/w',
    });
  });
});

describe('engine storage roots', () => {
  it("are dockerd's overlay2 and containerd's overlayfs snapshots (its own, or dockerd's) by default", () => {
    expect(DEFAULT_ENGINE_STORAGE).toEqual([
      DOCKER,
      '/var/lib/docker/containerd/daemon/io.containerd.snapshotter.v1.overlayfs/snapshots',
      CONTAINERD,
    ]);
  });

  it("derive from dockerd's data root: its overlay2 and the containerd it runs itself", () => {
    expect(dockerStorageRoots('/srv/docker')).toEqual([
      '/srv/docker/overlay2',
      '/srv/docker/containerd/daemon/io.containerd.snapshotter.v1.overlayfs/snapshots',
    ]);
  });

  it('a path lies in one only strictly beneath it, by whole components, without . or ..', () => {
    expect(inEngineStorage(`${DOCKER}/${ID}/diff`, [DOCKER])).toBe(true);
    expect(inEngineStorage(`${DOCKER}//${ID}/diff/`, [DOCKER])).toBe(true);
    expect(inEngineStorage(DOCKER, [DOCKER])).toBe(false);
    expect(inEngineStorage(`${DOCKER}-evil/${ID}/diff`, [DOCKER])).toBe(false);
    expect(inEngineStorage(`${DOCKER}evil/x`, [DOCKER])).toBe(false);
    expect(inEngineStorage(`${DOCKER}/../../../../tmp/x/diff`, [DOCKER])).toBe(false);
    expect(inEngineStorage(`${DOCKER}/./x/diff`, [DOCKER])).toBe(false);
    expect(inEngineStorage(`${ID}/diff`, [DOCKER])).toBe(false); // relative: from which cwd?
    expect(inEngineStorage(`${DOCKER.slice(1)}/${ID}/diff`, [DOCKER])).toBe(false);
    expect(inEngineStorage(`/elsewhere${DOCKER}/x`, [DOCKER])).toBe(false);
  });

  it('configured ones are checked and normalized, and bad ones refused with a clear error', () => {
    expect(engineStorageRoots(['/srv/docker/overlay2/', '/srv//c'])).toEqual([
      '/srv/docker/overlay2',
      '/srv/c',
    ]);
    expect(() => engineStorageRoots(['srv/overlay2'])).toThrow(
      'engine storage root "srv/overlay2" must be an absolute path',
    );
    expect(() => engineStorageRoots(['/'])).toThrow(
      'engine storage root "/" would make every overlay a container\'s root',
    );
    expect(() => engineStorageRoots(['/srv/../overlay2'])).toThrow(
      'engine storage root "/srv/../overlay2" must not contain . or .. components',
    );
  });
});

describe('leakReason: only a dead container root is a leak', () => {
  it("a dead dockerd container's overlay is one, and names its upper layer", () => {
    expect(leakReason(dockerOverlay(), none)).toBe(
      `its filesystem (overlay 0:61, upper layer ${DOCKER}/${ID}/diff) is the root of a container that is no longer running`,
    );
  });

  it("so is a dead containerd snapshot's overlay", () => {
    const entry = overlay(
      `rw,lowerdir=${CONTAINERD}/1/fs,upperdir=${CONTAINERD}/7/fs,workdir=${CONTAINERD}/7/work`,
    );
    expect(leakReason(entry, none)).toMatch(/upper layer .*\/7\/fs\) is the root of a container/);
  });

  it("a running container's overlay is not", () => {
    expect(leakReason(dockerOverlay(), { ...none, devices: new Set(['0:61']) })).toBeUndefined();
  });

  it("an operator's overlay is not: upper and work elsewhere, or only one of them in storage", () => {
    expect(leakReason(overlay('rw,lowerdir=/srv/l,upperdir=/srv/u,workdir=/srv/w'), none)).toBe(
      undefined,
    );
    expect(
      leakReason(overlay(`rw,lowerdir=/srv/l,upperdir=${DOCKER}/${ID}/diff,workdir=/srv/w`), none),
    ).toBeUndefined();
    expect(
      leakReason(overlay(`rw,lowerdir=/srv/l,upperdir=/srv/u,workdir=${DOCKER}/${ID}/work`), none),
    ).toBeUndefined();
    // Lower layers from the engine say nothing: whoever mounts may stack on them.
    expect(
      leakReason(overlay(`rw,lowerdir=${DOCKER}/l/ABC,upperdir=/srv/u,workdir=/srv/w`), none),
    ).toBeUndefined();
  });

  it('upper and work must lie in the same storage root', () => {
    const split = overlay(
      `rw,lowerdir=/l,upperdir=${DOCKER}/${ID}/diff,workdir=${CONTAINERD}/7/work`,
    );
    expect(leakReason(split, none)).toBeUndefined();
  });

  it('a read-only overlay (no upper) is not, even with engine lower layers', () => {
    expect(leakReason(overlay(`ro,lowerdir=${DOCKER}/l/A:${DOCKER}/l/B`), none)).toBeUndefined();
  });

  it('a prefix of the storage root is not the storage root', () => {
    expect(leakReason(dockerOverlay(ID, `${DOCKER}-evil`), none)).toBeUndefined();
    const escaped = overlay(
      `rw,lowerdir=/l,upperdir=${DOCKER}\\134\\054evil/u,workdir=${DOCKER}\\134\\054evil/w`,
    );
    expect(leakReason(escaped, none)).toBeUndefined();
    const dotdot = overlay(`rw,lowerdir=/l,upperdir=${DOCKER}/../u,workdir=${DOCKER}/../w`);
    expect(leakReason(dotdot, none)).toBeUndefined();
  });

  it('an upper path with a comma or colon hidden by escapes is still recognised', () => {
    const entry = overlay(
      `rw,lowerdir=/l,upperdir=${DOCKER}/a\\134\\054b\\134:c/diff,workdir=${DOCKER}/a\\134\\054b\\134:c/work`,
    );
    expect(leakReason(entry, none)).toBe(
      `its filesystem (overlay 0:61, upper layer ${DOCKER}/a,b:c/diff) is the root of a container that is no longer running`,
    );
  });

  it('a relative upper (dockerd mounting from its home with many layers) cannot be told, so is not', () => {
    expect(
      leakReason(overlay(`rw,lowerdir=l/A:l/B,upperdir=${ID}/diff,workdir=${ID}/work`), none),
    ).toBe(undefined);
  });

  it('only the configured storage roots count', () => {
    const moved = dockerOverlay(ID, '/srv/docker/overlay2');
    expect(leakReason(moved, none)).toBeUndefined();
    expect(leakReason(moved, noneRunningIn(['/srv/docker/overlay2']))).toMatch(/no longer running/);
    expect(leakReason(dockerOverlay(), noneRunningIn(['/srv/docker/overlay2']))).toBeUndefined();
  });

  it('tmpfs, nsfs, FUSE, NFS and binds are never leaks', () => {
    for (const line of [
      '94 91 0:70 / /vol/s rw - tmpfs tmpfs rw',
      '94 91 0:4 net:[4026532281] /vol/q rw - nsfs nsfs rw',
      '94 91 0:71 / /vol/f rw - fuse.sshfs host:/x rw,user_id=0',
      '94 91 0:72 / /vol/n rw - nfs4 srv:/e rw,vers=4.2',
      `94 91 8:1 ${DOCKER}/${ID}/diff /vol/b rw - ext4 /dev/sda1 rw`,
    ]) {
      expect(leakReason(parseMountinfoLine(line), none)).toBeUndefined();
    }
  });
});

describe('leakReason: directory roots (vfs & co.) judged on the filesystem that holds them', () => {
  const vfs: RunningRoots = {
    ...none,
    roots: [
      { device: '8:1', root: '/var/lib/docker/vfs/dir/live' },
      { device: '0:62', root: '/' }, // a running overlay container's root: another filesystem
    ],
    layers: { device: '8:1', root: '/var/lib/docker/vfs' },
  };
  const bind = (device: string, root: string) =>
    parseMountinfoLine(`94 91 ${device} ${root} /vol/etc rw - ext4 /dev/x rw`);

  it("a bind of a dead container's directory is a leak; a running one's is not", () => {
    expect(leakReason(bind('8:1', '/var/lib/docker/vfs/dir/dead/etc'), vfs)).toBe(
      'it comes from /var/lib/docker/vfs/dir/dead/etc, the layer of a container that is no longer running',
    );
    expect(leakReason(bind('8:1', '/var/lib/docker/vfs/dir/live/etc'), vfs)).toBeUndefined();
  });

  it('the same path on another filesystem is not (an operator disk laid out alike)', () => {
    expect(leakReason(bind('8:17', '/var/lib/docker/vfs/dir/dead/etc'), vfs)).toBeUndefined();
  });

  it("is held only by a running root on the same filesystem: an overlay container's / is not", () => {
    const liveOnly = { ...vfs, roots: [{ device: '0:62', root: '/' }] };
    expect(leakReason(bind('8:1', '/var/lib/docker/vfs/dir/dead/etc'), liveOnly)).toMatch(
      /no longer running/,
    );
    const sameDisk = { ...vfs, roots: [{ device: '8:1', root: '/var/lib/docker/vfs/dir/dead' }] };
    expect(leakReason(bind('8:1', '/var/lib/docker/vfs/dir/dead/etc'), sameDisk)).toBeUndefined();
  });

  it('a path next to the layer directory, or the layer directory itself, is not', () => {
    expect(leakReason(bind('8:1', '/var/lib/docker/vfs-evil/dir/dead'), vfs)).toBeUndefined();
    expect(leakReason(bind('8:1', '/var/lib/docker/vfs'), vfs)).toBeUndefined();
  });
});
