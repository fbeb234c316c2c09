/**
 * End-to-end: what `make release` builds, before any dockerd sees it: the tarball and its
 * checksum, the plugin stamped with its version, and the standalone CLI and runtime, which serve
 * with no Node on PATH. Pushing, installing, upgrading and uninstalling a release are in
 * release.test.ts; these two need no dockerd, so this file starts none.
 *
 * The releases are built by `make e2e-releases` (a prerequisite of `make test-e2e`).
 */
import { execa } from 'execa';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { onEngine } from './harness/index.js';
import { SETUP_MS, TEST_MS, V1, releaseDir, releaseWorkDir, tarballOf } from './harness/release.js';
import { DriverProcess } from '../support/driver-process.js';

let work: string;
/** PATH for the standalone CLI: docker, mount, umount and flock, and no node. */
let noNodePath: string;
let cliDir: string;

beforeAll(async () => {
  ({ work, noNodePath } = await releaseWorkDir());
}, SETUP_MS);

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
}, SETUP_MS);

describe(onEngine('a release, from a registry, upgraded with containers running'), () => {
  it(
    'make release: the plugin stamped with its version, a standalone CLI and runtime, a tarball and its checksum',
    async () => {
      const dir = releaseDir(V1);
      const check = await execa('sha256sum', ['-c', `${tarballOf(V1)}.sha256`], { cwd: dir });
      expect(check.stdout).toBe(`${tarballOf(V1)}: OK`);
      await execa('tar', ['-xzf', path.join(dir, tarballOf(V1)), '-C', work]);
      cliDir = path.join(work, `sharedprop-${V1}`);
      const env = { PATH: noNodePath };
      const cli = await execa(path.join(cliDir, 'sharedprop'), ['--version'], {
        env,
        extendEnv: false,
      });
      expect(cli.stdout).toBe(V1);
      // The wrapper's line first; runc's follow (dockerd reads the last "version" line: runc's).
      const runtime = await execa(path.join(cliDir, 'sharedprop-runtime'), ['--version']);
      const lines = runtime.stdout.split('\n');
      expect(lines[0]).toBe(`sharedprop-runtime version ${V1}`);
      expect(lines[1]).toMatch(/^runc version /);
      const config = JSON.parse(
        await readFile(path.join(dir, 'plugin', 'config.json'), 'utf8'),
      ) as {
        description: string;
        env: { name: string; value: string }[];
      };
      expect(config.description).toMatch(new RegExp(`^sharedprop ${V1.replace(/\./g, '\\.')}:`));
      expect(config.env.find((e) => e.name === 'SHAREDPROP_VERSION')?.value).toBe(V1);
      const sizes = await execa(
        'du',
        ['-sm', 'plugin/rootfs', 'sharedprop', 'sharedprop-runtime-create', tarballOf(V1)],
        {
          cwd: dir,
        },
      );
      console.log(`release sizes (MB):\n${sizes.stdout}`);
    },
    TEST_MS,
  );

  it(
    "the release's sharedprop serves by itself, with no Node on PATH: Create, Mount, and a Remove that deletes the data",
    async () => {
      const driver = await DriverProcess.start({
        parentDir: work,
        command: [path.join(cliDir, 'sharedprop')],
        env: { PATH: noNodePath },
      });
      try {
        expect(await driver.ok('/Plugin.Activate', {})).toEqual({ Implements: ['VolumeDriver'] });
        await driver.ok('/VolumeDriver.Create', { Name: 'standalone' });
        const { Mountpoint } = (await driver.ok('/VolumeDriver.Mount', {
          Name: 'standalone',
          ID: 'c1',
        })) as { Mountpoint: string };
        await writeFile(path.join(Mountpoint, 'payload'), 'kept until Remove\n');
        await driver.ok('/VolumeDriver.Unmount', { Name: 'standalone', ID: 'c1' });
        await driver.ok('/VolumeDriver.Remove', { Name: 'standalone' });
        // Deleted, not left in the trash: the delete helper travels beside the executable.
        expect(await readdir(path.join(driver.dataRoot, 'volumes'))).toEqual([]);
        expect(await driver.log()).not.toMatch(
          /sharedprop-rmtree is missing|could not all be deleted/,
        );
      } finally {
        await driver.destroy();
      }
    },
    TEST_MS,
  );
});
