/**
 * The shared harness of the protocol-abuse tests (test/integration/protocol-abuse/*.test.ts):
 * drivers started for a test and destroyed after it, and what the tests read of the driver's
 * process, disk and mounts (the volume paths, statusOf and listed are those of
 * test/support/volume-checks.ts). Each test file has its own instance of this module (jest
 * isolates files), so `startDriver` and `destroyDrivers` keep track of that file's drivers only.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DriverProcess } from '../../support/driver-process.js';
import { hostMountsAt, hostMountsWithin } from '../../support/host-mounts.js';
import { dataDirOf, mountpointOf, volumesDir } from '../../support/volume-checks.js';

/** The seed of the fuzz and of the kill -9 storm; SHAREDPROP_FUZZ_SEED replays another. */
export const SEED = Number(process.env.SHAREDPROP_FUZZ_SEED ?? 1_729_052_026);
export const MiB = 1024 * 1024;

const drivers: DriverProcess[] = [];
export async function startDriver(options: Parameters<typeof DriverProcess.start>[0] = {}) {
  const driver = await DriverProcess.start({ logLevel: 'warn', ...options });
  drivers.push(driver);
  return driver;
}
/** Destroys every driver started since the last call: each test file runs it in afterEach. */
export async function destroyDrivers(): Promise<void> {
  for (const driver of drivers.splice(0)) await driver.destroy();
}

// ---------------------------------------------------------------------------------------------
// Helpers: the driver's process, disk and mounts
// ---------------------------------------------------------------------------------------------

const LEFTOVER = /^\.(new|trash)-/;
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for ${pid}`);
  return Number(kb) / 1024;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Entries of a directory, or [] when it does not exist. */
export async function entries(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).sort();
}

/**
 * What is wrong with the disk and the mount table, given the volumes that should exist:
 * each has its data directory and exactly one mount at its mount point; no other volume
 * directory, no staging or trash left over, and no mount under the mount root of anything else.
 */
export async function diskProblems(
  driver: DriverProcess,
  names: readonly string[],
): Promise<string[]> {
  const problems: string[] = [];
  const want = [...names].sort();
  const inVolumes = await entries(volumesDir(driver));
  const leftovers = [
    ...inVolumes.filter((e) => LEFTOVER.test(e)).map((e) => `volumes/${e}`),
    ...(await entries(driver.dataRoot)).filter((e) => LEFTOVER.test(e)),
    ...(await entries(driver.mountRoot)).filter((e) => LEFTOVER.test(e)).map((e) => `mounts/${e}`),
  ];
  if (leftovers.length > 0) problems.push(`leftovers: ${leftovers.join(', ')}`);
  const dirs = inVolumes.filter((e) => !e.startsWith('.'));
  if (JSON.stringify(dirs) !== JSON.stringify(want)) {
    problems.push(`volumes/ holds [${dirs}], the volumes are [${want}]`);
  }
  for (const name of want) {
    const data = await stat(dataDirOf(driver, name)).catch(() => undefined);
    if (!data?.isDirectory()) problems.push(`${name}: no data directory`);
    const stack = await hostMountsAt(mountpointOf(driver, name));
    if (stack.length !== 1) problems.push(`${name}: ${stack.length} mounts at its mount point`);
  }
  const wanted = new Set(want);
  for (const entry of await hostMountsWithin(driver.mountRoot)) {
    if (entry.mountPoint === driver.mountRoot) continue;
    const rest = entry.mountPoint.slice(driver.mountRoot.length + 1);
    const owner = rest.split('/')[0]!;
    if (!wanted.has(owner)) problems.push(`a mount of no listed volume: mounts/${rest}`);
    else if (rest !== owner) problems.push(`a submount nobody made: mounts/${rest}`);
  }
  return problems;
}

/** Polls diskProblems until none is left (leftovers may be deleted in the background). */
export async function settledDiskProblems(
  driver: DriverProcess,
  names: readonly string[],
  ms = 10_000,
): Promise<string[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const problems = await diskProblems(driver, names);
    if (problems.length === 0 || Date.now() > deadline) return problems;
    await sleep(100);
  }
}

/** Own keys of an object parsed from JSON, `__proto__` included, as sorted [key, value] pairs. */
export function pairs(object: Record<string, unknown>): [string, unknown][] {
  return Object.keys(object)
    .sort()
    .map((key) => [key, object[key]]);
}

/** Writes a file through the mount point and finds it in the data directory. */
export async function mountShowsData(driver: DriverProcess, name: string): Promise<boolean> {
  const probe = `.probe-${randomBytes(4).toString('hex')}`;
  await writeFile(path.join(mountpointOf(driver, name), probe), 'x');
  try {
    return (await readFile(path.join(dataDirOf(driver, name), probe), 'utf8')) === 'x';
  } catch {
    return false;
  } finally {
    await rm(path.join(mountpointOf(driver, name), probe), { force: true });
  }
}
