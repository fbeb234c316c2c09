/**
 * Installs bench/zero-cost-driver.mjs as a managed plugin: sharedprop's own plugin rootfs (the
 * same Node) with the zero-cost driver as entrypoint, so the two differ only in the driver.
 */
import { execa } from 'execa';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DockerDaemon } from '../test/e2e/harness/docker-daemon.js';
import { REPO_ROOT } from '../test/e2e/harness/plugin.js';

/**
 * `status`: what its Get answers as the volume's Status (default `{}`); given sharedprop's, the
 * plugin shows what dockerd and the CLI spend on that document alone.
 */
export async function installZeroCostPlugin(
  daemon: DockerDaemon,
  name: string,
  status: Record<string, unknown> = {},
): Promise<void> {
  const built = path.join(REPO_ROOT, 'build', 'plugin');
  const dir = path.join(daemon.base, `zero-cost-plugin-${name}`);
  const rootfs = path.join(dir, 'rootfs');
  await mkdir(dir);
  // Hard links where the checkout and the daemon's directory share a file system (`docker plugin
  // create` copies the tree, and nothing here writes to a linked file); a copy where they do not,
  // as in CI, whose checkout is on another file system than /tmp.
  const linked = await execa('cp', ['-al', path.join(built, 'rootfs'), rootfs], { reject: false });
  if (linked.failed) {
    await rm(rootfs, { recursive: true, force: true });
    await execa('cp', ['-a', path.join(built, 'rootfs'), rootfs]);
  }
  const driver = await readFile(path.join(REPO_ROOT, 'bench', 'zero-cost-driver.mjs'), 'utf8');
  await writeFile(
    path.join(rootfs, 'zero-cost-driver.mjs'),
    driver.replace('Status: {}', `Status: ${JSON.stringify(status)}`),
  );
  const config = JSON.parse(await readFile(path.join(built, 'config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const socket = (config.interface as { socket: string }).socket;
  await writeFile(
    path.join(dir, 'config.json'),
    JSON.stringify({
      ...config,
      description: 'sharedprop bench: a volume driver that does nothing',
      entrypoint: ['/usr/local/bin/node', '/zero-cost-driver.mjs', `/run/docker/plugins/${socket}`],
      mounts: [],
      env: [],
    }),
  );
  await daemon.dockerOk(['plugin', 'create', name, dir], { timeoutMs: 120_000 });
  await daemon.dockerOk(['plugin', 'enable', name]);
}
