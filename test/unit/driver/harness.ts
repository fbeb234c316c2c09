/**
 * What the driver's unit tests share: a SharedpropDriver over fakes of the store and the mount
 * system (no root, no mounts), started, and the helpers its tests use.
 */
import { SharedpropDriver, type DriverConfig } from '../../../src/driver/sharedprop-driver.js';
import { VolumeError } from '../../../src/model/errors.js';
import { FakeMounts, FakeStore } from '../../support/driver-fakes.js';
import { silentLogger } from '../../support/silent-logger.js';

export const MOUNT_ROOT = '/fake/mounts';
export const mp = (name: string) => `${MOUNT_ROOT}/${name}`;

export async function setup<M extends FakeMounts = FakeMounts>(
  prepare: (store: FakeStore, mounts: M) => void = () => undefined,
  config: Partial<DriverConfig> = {},
  mounts: M = new FakeMounts() as M,
) {
  const store = new FakeStore();
  prepare(store, mounts);
  const driver = new SharedpropDriver({
    dataRoot: '/fake/data',
    mountRoot: MOUNT_ROOT,
    logger: silentLogger(),
    store,
    mounts,
    statusMaxAgeMs: 0,
    ...config,
  });
  await driver.start();
  return { driver, store, mounts };
}

export async function failure(work: Promise<unknown>): Promise<VolumeError> {
  try {
    await work;
  } catch (error) {
    expect(error).toBeInstanceOf(VolumeError);
    return error as VolumeError;
  }
  throw new Error('expected a failure');
}

export const noOptions = new Map<string, string>();

/** A Mount whose answer reached dockerd: counted and saved. */
export async function mountDelivered(driver: SharedpropDriver, name: string, id: string) {
  const mounted = await driver.mount(name, id);
  mounted.commit();
  return mounted.value;
}
