/**
 * Integration tier: `-o reap=on-unmount` on the real driver, as root. A container that binds part
 * of its root filesystem into a volume and exits leaves that bind behind (it pins the dead
 * container's overlay); the volume's last Unmount detaches it, and keeps what must outlive its
 * maker: a network-namespace file, a tmpfs.
 */
import { jest } from '@jest/globals';
import { execa } from 'execa';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DriverProcess } from '../support/driver-process.js';
import { hostMountsAt, hostMountsWithin } from '../support/host-mounts.js';

jest.setTimeout(120_000);

let driver: DriverProcess;
beforeEach(async () => {
  driver = await DriverProcess.start();
});
afterEach(async () => {
  await driver.destroy();
});

const mountpointOf = (name: string) => path.join(driver.mountRoot, name);

/**
 * What a container leaves: its root filesystem (an overlay) with its /etc bound into the volume
 * at `target`; then the container's own root mount goes, so only the leaked bind pins it.
 */
async function leakContainerEtc(target: string): Promise<void> {
  const layers = path.join(driver.base, `container-${path.basename(target)}`);
  for (const dir of ['lower/etc', 'upper', 'work', 'rootfs']) {
    await mkdir(path.join(layers, dir), { recursive: true });
  }
  await writeFile(path.join(layers, 'lower', 'etc', 'hostname'), 'dead-container\n');
  const rootfs = path.join(layers, 'rootfs');
  await execa('mount', [
    '-t',
    'overlay',
    'overlay',
    '-o',
    `lowerdir=${layers}/lower,upperdir=${layers}/upper,workdir=${layers}/work`,
    rootfs,
  ]);
  await mkdir(target, { recursive: true });
  await execa('mount', ['--bind', path.join(rootfs, 'etc'), target]);
  await execa('umount', [rootfs]);
}

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
