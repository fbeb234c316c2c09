/** Checks on a driver's volumes that several integration suites share. */
import { expect } from '@jest/globals';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { DriverProcess } from './driver-process.js';
import { hostMountsAt, hostMountsWithin } from './host-mounts.js';
import { waitFor } from './wait-for.js';

export { waitFor };

export const mountpointOf = (driver: DriverProcess, name: string) =>
  path.join(driver.mountRoot, name);
export const volumesDir = (driver: DriverProcess) => path.join(driver.dataRoot, 'volumes');
export const dataDirOf = (driver: DriverProcess, name: string) =>
  path.join(volumesDir(driver), name, '_data');

export interface Status {
  activeMounts: number;
  mountIds: Record<string, number>;
  countsSaved: boolean;
  mountPoint: string;
  submounts: { path: string }[];
}

export async function statusOf(driver: DriverProcess, name: string): Promise<Status> {
  const body = (await driver.ok('/VolumeDriver.Get', { Name: name })) as {
    Volume: { Status: Status };
  };
  return body.Volume.Status;
}

export async function listed(driver: DriverProcess): Promise<string[]> {
  const body = (await driver.ok('/VolumeDriver.List', {})) as { Volumes: { Name: string }[] };
  return body.Volumes.map((v) => v.Name).sort();
}

/** Every volume the driver lists is whole and mounted once; nothing else is left on disk or mounted. */
export async function expectConsistent(driver: DriverProcess): Promise<string[]> {
  const names = await listed(driver);
  await waitFor('leftovers to be deleted', async () =>
    (await readdir(volumesDir(driver))).every((entry) => !entry.startsWith('.')),
  );
  expect((await readdir(volumesDir(driver))).sort()).toEqual(names);
  for (const name of names) {
    const stack = await hostMountsAt(mountpointOf(driver, name));
    expect(stack).toHaveLength(1);
    expect(stack[0]!.sharedGroup).toBeDefined();
    const record = JSON.parse(
      await readFile(path.join(volumesDir(driver), name, 'volume.json'), 'utf8'),
    ) as { options: { type?: string; path?: string } };
    if (record.options.path !== undefined) {
      // An adopted host directory: its mount point shows it, nothing of it is in the data root.
      expect((await stat(mountpointOf(driver, name))).ino).toBe(
        (await stat(record.options.path)).ino,
      );
      await expect(stat(dataDirOf(driver, name))).rejects.toThrow(/ENOENT/);
    } else if (record.options.type === 'tmpfs') {
      // A tmpfs volume: its own tmpfs at the mount point, nothing of its contents on disk.
      expect(stack[0]!.fsType).toBe('tmpfs');
      await expect(stat(dataDirOf(driver, name))).rejects.toThrow(/ENOENT/);
    } else {
      expect((await stat(dataDirOf(driver, name))).isDirectory()).toBe(true);
    }
  }
  const mounted = new Set(
    (await hostMountsWithin(driver.mountRoot))
      .filter((e) => e.mountPoint !== driver.mountRoot)
      .map((e) => e.mountPoint.slice(driver.mountRoot.length + 1).split('/')[0]),
  );
  expect([...mounted].sort()).toEqual(names);
  return names;
}
