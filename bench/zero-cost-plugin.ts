/**
 * Installs bench/zero-cost-driver.mjs as a managed plugin: sharedprop's own plugin rootfs (the
 * same Node, started with the same Node options as sharedprop's entrypoint) with the zero-cost
 * driver as entrypoint, so the two differ only in the driver.
 */
import { execa } from 'execa';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DockerDaemon } from '../test/e2e/harness/docker-daemon.js';
import { REPO_ROOT } from '../test/e2e/harness/plugin.js';

/** The Node options of sharedprop's entrypoint: what comes between node and the script. */
export function nodeOptionsOf(entrypoint: readonly string[]): string[] {
  const script = entrypoint.findIndex((arg, i) => i > 0 && !arg.startsWith('-'));
  return entrypoint.slice(1, script < 0 ? undefined : script);
}

/**
 * `getFields`: what its Get answers besides Name and Mountpoint (default: an empty Status); given
 * sharedprop's CreatedAt and Status, the plugin answers the document sharedprop answers, and
 * shows what dockerd and the CLI spend on that document apart from what the driver spends.
 */
export async function installZeroCostPlugin(
  daemon: DockerDaemon,
  name: string,
  getFields: Record<string, unknown> = { Status: {} },
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
  // A file of its own, so that no two plugins' rootfs layers are the same content (dockerd 20.10
  // refuses to create a plugin whose layer it already holds).
  await writeFile(
    path.join(rootfs, 'zero-cost-driver.mjs'),
    `${await readFile(path.join(REPO_ROOT, 'bench', 'zero-cost-driver.mjs'), 'utf8')}// ${name}\n`,
  );
  const config = JSON.parse(await readFile(path.join(built, 'config.json'), 'utf8')) as {
    entrypoint: string[];
    interface: { socket: string };
  } & Record<string, unknown>;
  await writeFile(
    path.join(dir, 'config.json'),
    JSON.stringify({
      ...config,
      description: 'sharedprop bench: a volume driver that does nothing',
      entrypoint: [
        '/usr/local/bin/node',
        ...nodeOptionsOf(config.entrypoint),
        '/zero-cost-driver.mjs',
        `/run/docker/plugins/${config.interface.socket}`,
        JSON.stringify(getFields),
      ],
      mounts: [],
      env: [],
    }),
  );
  await daemon.dockerOk(['plugin', 'create', name, dir], { timeoutMs: 120_000 });
  await daemon.dockerOk(['plugin', 'enable', name]);
}
