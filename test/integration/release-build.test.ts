/**
 * A release builds wherever `npm ci` works. npm treats a failed build of an optional dependency as
 * success: cpu-features (ssh2's optional native helper, under dockerode) was once left unbuilt on a
 * fresh machine without a word, and Bun's compile of the CLI then stopped on its missing
 * `build/Release/cpufeatures.node`. Here the standalone CLI is built from a copy of the checkout
 * whose node_modules has no cpu-features build, and the result reaches the engine code (which
 * loads ssh2) and reports its version.
 */
import { execa } from 'execa';
import { copyFile, cp, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { countMountsAt, DriverProcess } from '../support/driver-process.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp('/tmp/sharedprop-release-build-');
  for (const entry of ['scripts', 'src', 'package.json', 'tsconfig.json']) {
    await cp(path.join(REPO, entry), path.join(dir, entry), { recursive: true });
  }
  // Hard links: a copy of node_modules in a second, without using the space twice. Removing a
  // directory of the copy leaves the checkout's own untouched.
  await execa('cp', ['-al', path.join(REPO, 'node_modules'), path.join(dir, 'node_modules')]);
  await rm(path.join(dir, 'node_modules', 'cpu-features', 'build'), {
    recursive: true,
    force: true,
  });
}, 120_000);
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const out = () => path.join(dir, 'out', 'sharedprop');

it('the standalone CLI builds and runs with cpu-features left unbuilt', async () => {
  await expect(stat(path.join(dir, 'node_modules', 'cpu-features', 'build'))).rejects.toThrow(
    /ENOENT/,
  );
  const build = await execa(path.join(dir, 'scripts', 'build-cli.sh'), [out()], {
    reject: false,
    all: true,
    env: { SHAREDPROP_VERSION: '9.9.9-nocpu' },
  });
  expect({ exitCode: build.exitCode, output: build.all }).toEqual({
    exitCode: 0,
    output: expect.stringContaining('built'),
  });
  expect((await execa(out(), ['--version'])).stdout).toBe('9.9.9-nocpu');
  // `ls` builds the engine client (dockerode, ssh2): with no engine behind DOCKER_HOST it fails
  // with the engine's error, not with a module that cannot be loaded.
  const ls = await execa(out(), ['ls'], {
    reject: false,
    all: true,
    env: { DOCKER_HOST: `unix://${path.join(dir, 'no-engine.sock')}` },
  });
  expect(ls.exitCode).not.toBe(0);
  expect(ls.all).toMatch(/no-engine\.sock/);
  expect(ls.all).not.toMatch(/cpu-features|cpufeatures|Cannot find module/);
}, 120_000);

/**
 * The standalone executable carries koffi's native module (Bun embeds it: see kernel/ffi.ts), so
 * `sharedprop serve` from a release makes its mounts with system calls and adopts host directories
 * by identity. Run from `/`, with the build copy's koffi packages deleted: nothing on disk could
 * stand in for the embedded module.
 */
it('the standalone CLI serves on the system calls, koffi embedded: a directory and an adopted volume', async () => {
  await stat(out()); // built by the test above
  await rm(path.join(dir, 'node_modules', '@koromix'), { recursive: true, force: true });
  await rm(path.join(dir, 'node_modules', 'koffi'), { recursive: true, force: true });
  await copyFile(
    path.join(REPO, 'dist', 'native', 'sharedprop-rmtree'),
    path.join(dir, 'out', 'sharedprop-rmtree'),
  );
  const driver = await DriverProcess.start({ command: ['env', '--chdir=/', out()] });
  try {
    const host = path.join(driver.base, 'hd');
    await mkdir(host);
    await driver.ok('/VolumeDriver.Create', { Name: 'plain', Opts: {} });
    await driver.ok('/VolumeDriver.Create', { Name: 'adopted', Opts: { path: host } });
    for (const name of ['plain', 'adopted']) {
      const { Mountpoint } = await driver.ok('/VolumeDriver.Mount', { Name: name, ID: 'c1' });
      expect(await countMountsAt(Mountpoint as string)).toBe(1);
      await driver.ok('/VolumeDriver.Unmount', { Name: name, ID: 'c1' });
      await driver.ok('/VolumeDriver.Remove', { Name: name });
    }
    const layer = (await readFile(driver.logFile, 'utf8'))
      .split('\n')
      .filter((line) => line.includes('"mount layer'));
    expect(layer).toEqual([expect.stringContaining('"message":"mount layer: system calls"')]);
  } finally {
    await driver.destroy();
  }
}, 120_000);
