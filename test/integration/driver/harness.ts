/**
 * What the files of the driver's integration tests (test/integration/driver-*.test.ts) share: one
 * real driver process per test, in a temporary directory of its own, and paths of its volumes.
 * Each file registers the hooks itself: `beforeEach(startDriver)` and `afterEach(destroyDriver)`.
 * Jest loads this module afresh for each test file, so no file sees another's driver.
 */
import { DriverProcess } from '../../support/driver-process.js';
import {
  dataDirOf as dataDirIn,
  mountpointOf as mountpointIn,
} from '../../support/volume-checks.js';

/** The running test's driver (a live binding: importers see each new one). */
export let driver: DriverProcess;

/** For beforeEach: starts the test's driver. */
export async function startDriver(): Promise<void> {
  driver = await DriverProcess.start();
}

/** For afterEach: destroys the test's driver, its mounts and its directory. */
export async function destroyDriver(): Promise<void> {
  await driver.destroy();
}

export const mountpointOf = (name: string) => mountpointIn(driver, name);
export const dataDirOf = (name: string) => dataDirIn(driver, name);

/** The host's mounts at exactly `target`, bottom of the stack first. */
export { hostMountsAt as entryAt } from '../../support/host-mounts.js';
