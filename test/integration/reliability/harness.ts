/**
 * What the files of the reliability suite, root tier (test/integration/reliability-*.test.ts)
 * share: the drivers a test starts, and their clean-up. Each file registers the hooks itself:
 * `afterEach(destroyDrivers)` and `afterAll(unmountLeftovers)`. Jest loads this module afresh for
 * each test file, so no file sees another's drivers.
 */
import { DriverProcess } from '../../support/driver-process.js';
import { unmountEverythingUnder } from '../../support/host-mounts.js';

const drivers: DriverProcess[] = [];

/** Starts a real `sharedprop serve`; destroyDrivers ends it after the test. */
export async function startDriver(options: Parameters<typeof DriverProcess.start>[0] = {}) {
  const driver = await DriverProcess.start(options);
  drivers.push(driver);
  return driver;
}

/** For afterEach: destroys every driver the test started. */
export async function destroyDrivers(): Promise<void> {
  for (const driver of drivers.splice(0)) await driver.destroy();
}

/** For afterAll: detaches the mounts of any driver still listed once the file's tests are done. */
export async function unmountLeftovers(): Promise<void> {
  for (const driver of drivers.splice(0)) await unmountEverythingUnder(driver.base);
}
