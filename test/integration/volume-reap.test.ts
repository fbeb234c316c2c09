/**
 * Integration tier: `-o reap=on-unmount` on the real driver, as root. A container that binds part
 * of its root filesystem into a volume and exits leaves that bind behind (it pins the dead
 * container's overlay); the volume's last Unmount detaches it, and keeps what must outlive its
 * maker: a network-namespace file, a tmpfs. Only an overlay whose upper and work directories lie in
 * an engine storage root (here a temporary directory given as SHAREDPROP_ENGINE_STORAGE) is a
 * container's: an operator's overlay elsewhere stays.
 */
import { jest } from '@jest/globals';
import { execa } from 'execa';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DriverProcess } from '../support/driver-process.js';
import { hostMountsAt, hostMountsWithin } from '../support/host-mounts.js';

jest.setTimeout(120_000);

let driver: DriverProcess;
/**
 * The engine storage root the driver is told about: a dead container's layers lie here. Its
 * comma and space reach mountinfo escaped twice (overlay's `\,`, the kernel's octal): a parser
 * that splits the options before undoing the kernel's escapes finds no upper in it.
 */
let storage: string;
const storageOf = (base: string) => path.join(base, 'engine, storage', 'overlay2');
beforeEach(async () => {
  driver = await DriverProcess.start({
    prepare: async (d) => {
      d.env.SHAREDPROP_ENGINE_STORAGE = storageOf(d.base);
    },
  });
  storage = storageOf(driver.base);
});
afterEach(async () => {
  await driver.destroy();
});

const mountpointOf = (name: string) => path.join(driver.mountRoot, name);

/** Overlay's escaping of a path in a mount option (a backslash before `,` `:` `\`). */
const overlayEscape = (dir: string) => dir.replace(/[\\,:]/g, (c) => `\\${c}`);

/**
 * An overlay's root filesystem whose upper and work directories lie in `layers`, with its /etc
 * bound into the volume at `target`; then the root mount itself goes, so only the bind pins it.
 * With `layers` in the engine storage root, what a dead container leaves; elsewhere, an
 * operator's own overlay.
 */
async function leakOverlayEtc(target: string, layers: string): Promise<void> {
  const rootfs = path.join(driver.base, `rootfs-${path.basename(target)}`);
  for (const dir of [
    path.join(layers, 'lower', 'etc'),
    path.join(layers, 'upper'),
    path.join(layers, 'work'),
    rootfs,
  ]) {
    await mkdir(dir, { recursive: true });
  }
  await writeFile(path.join(layers, 'lower', 'etc', 'hostname'), 'dead-container\n');
  const at = (dir: string) => overlayEscape(path.join(layers, dir));
  await execa('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${at('lower')},upperdir=${at('upper')},workdir=${at('work')}`,
    rootfs,
  ]);
  await mkdir(target, { recursive: true });
  await execa('mount', ['--bind', path.join(rootfs, 'etc'), target]);
  await execa('umount', [rootfs]);
}

/** What a dead container leaves: its /etc bound at `target`, its layers in engine storage. */
const leakContainerEtc = (target: string) =>
  leakOverlayEtc(target, path.join(storage, `container-${path.basename(target)}`));

async function addNetns(file: string): Promise<void> {
  await execa('sh', ['-c', ': > "$1" && unshare --net="$1" true', 'sh', file]);
}

describe('reap=on-unmount', () => {
  it("detaches a dead container's leaked bind at the last Unmount, and keeps a namespace file and a tmpfs", async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'agents', Opts: { reap: 'on-unmount' } });
    const mp = mountpointOf('agents');
    await driver.ok('/VolumeDriver.Mount', { Name: 'agents', ID: 'l3' });
    await driver.ok('/VolumeDriver.Mount', { Name: 'agents', ID: 'dhcp' });
    await leakContainerEtc(path.join(mp, 'etc'));
    await addNetns(path.join(mp, 'qrouter-1'));
    await mkdir(path.join(mp, 'scratch'));
    await execa('mount', ['-t', 'tmpfs', 'sp-reap-scratch', path.join(mp, 'scratch')]);
    expect(await readFile(path.join(mp, 'etc', 'hostname'), 'utf8')).toBe('dead-container\n');

    await driver.ok('/VolumeDriver.Unmount', { Name: 'agents', ID: 'l3' });
    expect(await hostMountsAt(path.join(mp, 'etc'))).toHaveLength(1); // dhcp still holds it

    await driver.ok('/VolumeDriver.Unmount', { Name: 'agents', ID: 'dhcp' });
    expect(await hostMountsAt(path.join(mp, 'etc'))).toEqual([]);
    const left = (await hostMountsWithin(mp)).map((e) => [e.mountPoint, e.fsType]).sort();
    expect(left).toEqual([
      [mp, expect.any(String)],
      [path.join(mp, 'qrouter-1'), 'nsfs'],
      [path.join(mp, 'scratch'), 'tmpfs'],
    ]);
    const log = await driver.log();
    expect(log).toMatch(
      /reaped a submount left by a container that no longer runs.*"path":"\/etc"/,
    );
    expect(log).not.toMatch(/reaped.*qrouter-1/);
    await driver.ok('/VolumeDriver.Remove', { Name: 'agents' });
    expect(await hostMountsWithin(mp)).toEqual([]);
  });

  it("an operator's overlay survives the last Unmount, a dead container's beside it is reaped", async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'ops', Opts: { reap: 'on-unmount' } });
    const mp = mountpointOf('ops');
    await driver.ok('/VolumeDriver.Mount', { Name: 'ops', ID: 'c1' });
    // Upper and work outside any storage root; beside it (a shared prefix); and a name that
    // reads as an upper in storage to a parser that splits before unescaping.
    await leakOverlayEtc(path.join(mp, 'operator'), path.join(driver.base, 'operator'));
    await leakOverlayEtc(path.join(mp, 'beside'), `${storage}-evil/x`);
    await leakOverlayEtc(
      path.join(mp, 'tricky'),
      path.join(driver.base, `ops,upperdir=${storage}`, 'x y:z'),
    );
    // A dead container's layers in storage, with a space, a comma and a colon in their path.
    await leakOverlayEtc(path.join(mp, 'dead'), path.join(storage, 'dead c,1:2'));
    const overlays = () =>
      hostMountsWithin(mp).then((all) =>
        all
          .filter((e) => e.fsType === 'overlay')
          .map((e) => path.basename(e.mountPoint))
          .sort(),
      );
    expect(await overlays()).toEqual(['beside', 'dead', 'operator', 'tricky']);

    await driver.ok('/VolumeDriver.Unmount', { Name: 'ops', ID: 'c1' });
    expect(await overlays()).toEqual(['beside', 'operator', 'tricky']);
    expect(await readFile(path.join(mp, 'operator', 'hostname'), 'utf8')).toBe('dead-container\n');
    const log = await driver.log();
    expect(log).toMatch(
      /reaped a submount left by a container that no longer runs.*"path":"\/dead"/,
    );
    expect(log).not.toMatch(/reaped.*"path":"\/(operator|beside|tricky)"/);
    await driver.ok('/VolumeDriver.Remove', { Name: 'ops' });
    expect(await hostMountsWithin(mp)).toEqual([]);
  });

  it('keeps a leak with a namespace file beneath it whole, and reaps its neighbour (nothing stuck)', async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'kept', Opts: { reap: 'on-unmount' } });
    const mp = mountpointOf('kept');
    await driver.ok('/VolumeDriver.Mount', { Name: 'kept', ID: 'c1' });
    await leakContainerEtc(path.join(mp, 'etc'));
    await addNetns(path.join(mp, 'etc', 'qrouter-1'));
    await leakContainerEtc(path.join(mp, 'other'));

    await driver.ok('/VolumeDriver.Unmount', { Name: 'kept', ID: 'c1' });
    const left = (await hostMountsWithin(mp)).map((e) => [e.mountPoint, e.fsType]).sort();
    expect(left).toEqual([
      [mp, expect.any(String)],
      [path.join(mp, 'etc'), 'overlay'],
      [path.join(mp, 'etc', 'qrouter-1'), 'nsfs'],
    ]);
    expect(await driver.log()).not.toMatch(/could not reap/);
    await driver.ok('/VolumeDriver.Remove', { Name: 'kept' });
    expect(await hostMountsWithin(mp)).toEqual([]);
  });

  it('without the option, the leak stays after the last Unmount (sharedprop prune detaches it)', async () => {
    await driver.ok('/VolumeDriver.Create', { Name: 'plain', Opts: {} });
    const mp = mountpointOf('plain');
    await driver.ok('/VolumeDriver.Mount', { Name: 'plain', ID: 'c1' });
    await leakContainerEtc(path.join(mp, 'etc'));
    await driver.ok('/VolumeDriver.Unmount', { Name: 'plain', ID: 'c1' });
    expect(await hostMountsAt(path.join(mp, 'etc'))).toHaveLength(1);
    await driver.ok('/VolumeDriver.Remove', { Name: 'plain' });
    expect(await hostMountsWithin(mp)).toEqual([]);
  });
});
