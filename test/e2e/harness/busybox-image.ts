/**
 * A busybox image without a registry: `docker import` of a rootfs that holds the host's static
 * busybox and a symlink per applet.
 */
import { execa } from 'execa';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DockerDaemon } from './docker-daemon.js';

export const BUSYBOX_IMAGE = 'sharedprop-e2e/busybox:latest';

async function staticBusybox(): Promise<string> {
  const { stdout } = await execa('sh', ['-c', 'command -v busybox']);
  const ldd = await execa('ldd', [stdout.trim()], { reject: false });
  if (ldd.exitCode === 0) {
    throw new Error(`${stdout.trim()} is dynamically linked: apt-get install busybox-static`);
  }
  return stdout.trim();
}

export async function buildBusyboxImage(
  daemon: DockerDaemon,
  tag = BUSYBOX_IMAGE,
): Promise<string> {
  const busybox = await staticBusybox();
  const work = await mkdtemp(path.join(daemon.base, 'busybox-'));
  try {
    const rootfs = path.join(work, 'rootfs');
    for (const dir of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'mnt', 'root', 'data']) {
      await mkdir(path.join(rootfs, dir), { recursive: true });
    }
    await execa('cp', [busybox, path.join(rootfs, 'bin/busybox')]);
    const applets = (await execa(busybox, ['--list'])).stdout.split('\n').filter(Boolean);
    for (const applet of applets) {
      if (applet !== 'busybox') await symlink('busybox', path.join(rootfs, 'bin', applet));
    }
    await writeFile(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    await writeFile(path.join(rootfs, 'etc/group'), 'root:x:0:\n');
    const tarball = path.join(work, 'rootfs.tar');
    await execa('tar', ['-C', rootfs, '--numeric-owner', '-cf', tarball, '.']);
    await daemon.dockerOk(['import', '--change', 'CMD ["sh"]', tarball, tag]);
    return tag;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
