/**
 * End-to-end with Podman (Debian's podman 4.3): the host-process driver is a Podman volume plugin
 * (`[engine.volume_plugins]` in containers.conf), and Podman honours `-v vol:/mnt:rshared` on a
 * named volume, so no runtime wrapper is needed. A network namespace made in one container shows
 * on the host and in a container already running; removing the volume leaves nothing mounted.
 *
 * Podman runs with a containers.conf, a storage root and a run root of this test's own (vfs
 * storage: no mounts of its own to leave), and no network; nothing of the host's Podman is used.
 *
 * The driver is a release's standalone `sharedprop serve` (`make e2e-releases` builds it) with
 * no Node on PATH, as a host without Node runs it: its Remove deletes the volume's data with the
 * delete helper that the release ships beside it.
 */
import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DriverProcess } from '../support/driver-process.js';
import { hostMountsWithin } from '../support/host-mounts.js';
import { CAN_MOUNT, MAKE_QROUTER_NETNS, waitForFile } from './harness/containers.js';
import { onEngine } from './harness/engine.js';
import { REPO_ROOT } from './harness/index.js';

const SETUP_MS = 300_000;
const TEST_MS = 300_000;
const IMAGE = 'localhost/sharedprop-e2e/busybox:latest';
/** A release `make e2e-releases` builds (Makefile: E2E_RELEASES). */
const RELEASE_CLI = path.join(REPO_ROOT, 'build', 'release', '0.0.0-e2e.1', 'sharedprop');

let work: string;
let driver: DriverProcess;
let config: string;

/** podman with this test's configuration and storage; never throws for a non-zero exit. */
function podman(args: string[]) {
  return execa(
    'podman',
    [
      '--root',
      path.join(work, 'storage'),
      '--runroot',
      path.join(work, 'run'),
      '--tmpdir',
      path.join(work, 'tmp'),
      '--storage-driver',
      'vfs',
      ...args,
    ],
    {
      env: { CONTAINERS_CONF: config, LC_ALL: 'C' },
      reject: false,
      all: true,
      timeout: 120_000,
    },
  );
}

async function podmanOk(args: string[]): Promise<string> {
  const result = await podman(args);
  if (result.exitCode !== 0) {
    throw new Error(`podman ${args.join(' ')} exited ${result.exitCode}: ${String(result.all)}`);
  }
  return result.stdout;
}

/** A busybox image from the host's static busybox: `podman import` of a rootfs tarball. */
async function importBusybox(): Promise<void> {
  const rootfs = path.join(work, 'rootfs');
  for (const dir of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'mnt', 'run', 'root']) {
    await mkdir(path.join(rootfs, dir), { recursive: true });
  }
  const busybox = (await execa('sh', ['-c', 'command -v busybox'])).stdout.trim();
  await execa('cp', [busybox, path.join(rootfs, 'bin', 'busybox')]);
  for (const applet of (await execa(busybox, ['--list'])).stdout.split('\n').filter(Boolean)) {
    if (applet !== 'busybox') await symlink('busybox', path.join(rootfs, 'bin', applet));
  }
  const tarball = path.join(work, 'rootfs.tar');
  await execa('tar', ['-C', rootfs, '-cf', tarball, '.']);
  await podmanOk(['import', tarball, IMAGE]);
}

beforeAll(async () => {
  work = await mkdtemp('/tmp/sharedprop-e2e-podman-');
  await stat(RELEASE_CLI).catch(() => {
    throw new Error(`${RELEASE_CLI} is missing: run make e2e-releases first`);
  });
  // PATH for the driver: what it runs (flock, mount, umount), and no node.
  const noNodePath = path.join(work, 'path');
  await mkdir(noNodePath);
  for (const tool of ['flock', 'mount', 'umount']) {
    const found = (await execa('sh', ['-c', `command -v ${tool}`])).stdout.trim();
    await symlink(found, path.join(noNodePath, tool));
  }
  driver = await DriverProcess.start({
    parentDir: work,
    command: [RELEASE_CLI],
    env: { PATH: noNodePath },
  });
  config = path.join(work, 'containers.conf');
  await writeFile(
    config,
    [
      '[containers]',
      // Without these, Podman's defaults exceed what these machines allow.
      'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]',
      'netns = "none"',
      '',
      '[engine]',
      'cgroup_manager = "cgroupfs"',
      'events_logger = "file"',
      'runtime = "runc"',
      '',
      '[engine.volume_plugins]',
      `sharedprop = "${driver.socket}"`,
      '',
    ].join('\n'),
  );
  await importBusybox();
}, SETUP_MS);

afterAll(async () => {
  if (work) {
    await podman(['rm', '--all', '--force', '--time', '0']);
    await podman(['volume', 'rm', '--all', '--force']);
    await podman(['system', 'reset', '--force']);
  }
  await driver?.destroy();
  if (work) await rm(work, { recursive: true, force: true });
}, SETUP_MS);

describe(onEngine("Podman, with a release's standalone driver as a volume plugin"), () => {
  it(
    'podman volume create --driver sharedprop, then a namespace made with :rshared reaches the host and a running container; rm leaves nothing',
    async () => {
      await podmanOk(['volume', 'create', '--driver', 'sharedprop', 'netns']);
      const status = JSON.parse(
        await podmanOk(['volume', 'inspect', '--format', '{{json .Status}}', 'netns']),
      ) as Record<string, unknown>;
      expect(status).toMatchObject({ type: 'directory', mountPoint: 'shared' });

      const mountPoint = path.join(driver.mountRoot, 'netns');
      const run = (name: string, command: readonly string[]) =>
        podmanOk([
          'run',
          '-d',
          '--name',
          name,
          '--network',
          'none',
          ...CAN_MOUNT,
          '-v',
          'netns:/run/netns:rshared',
          IMAGE,
          ...command,
        ]);
      try {
        await run('dhcp', ['sleep', '3600']);
        await run('l3', MAKE_QROUTER_NETNS);
        await waitForFile(path.join(mountPoint, 'qrouter-1.id'));
        const routerNs = (await readFile(path.join(mountPoint, 'qrouter-1.id'), 'utf8')).trim();
        const onHost = await execa('nsenter', [
          `--net=${path.join(mountPoint, 'qrouter-1')}`,
          'readlink',
          '/proc/self/ns/net',
        ]);
        expect(onHost.stdout.trim()).toBe(routerNs);
        const inDhcp = await podmanOk([
          'exec',
          'dhcp',
          'nsenter',
          '--net=/run/netns/qrouter-1',
          'readlink',
          '/proc/self/ns/net',
        ]);
        expect(inDhcp.trim()).toBe(routerNs);
        // A container started later sees it too, and the driver counts both users.
        const later = await podmanOk([
          'run',
          '--rm',
          '--network',
          'none',
          ...CAN_MOUNT,
          '-v',
          'netns:/run/netns:rshared',
          IMAGE,
          'nsenter',
          '--net=/run/netns/qrouter-1',
          'readlink',
          '/proc/self/ns/net',
        ]);
        expect(later.trim()).toBe(routerNs);
        const inUse = JSON.parse(
          await podmanOk(['volume', 'inspect', '--format', '{{json .Status}}', 'netns']),
        ) as { activeMounts: number };
        expect(inUse.activeMounts).toBeGreaterThanOrEqual(1);
      } finally {
        await podman(['rm', '--force', '--time', '0', 'l3', 'dhcp']);
      }

      await podmanOk(['volume', 'rm', 'netns']);
      expect(await podmanOk(['volume', 'ls', '--format', '{{.Name}}'])).toBe('');
      // The namespace's bind and the volume's mount point are gone from the host.
      expect(await hostMountsWithin(mountPoint)).toEqual([]);
      // Its data is deleted, not left in the trash: the standalone driver found its helper.
      expect(await readdir(path.join(driver.dataRoot, 'volumes'))).toEqual([]);
      expect(await driver.log()).not.toMatch(
        /sharedprop-rmtree is missing|could not all be deleted/,
      );
    },
    TEST_MS,
  );
});
