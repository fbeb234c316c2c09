/**
 * Which mount layer the driver runs on, chosen once at start:
 *   - `auto` (default): the layer on system calls (SyscallMounts), which reads one mount and its
 *     children by ID (statmount/listmount) where the kernel has them, else mountinfo once per
 *     operation;
 *   - `mountinfo`: the same layer, always reading mountinfo (the path of kernels before 6.8);
 *   - `mount8`: mount(8) and umount(8) processes and a read of mountinfo at every step
 *     (MountSystem), the layer of earlier releases.
 * When the system calls cannot be made here (the FFI does not load, as in a Bun-compiled
 * executable, or the kernel is older than 5.12), `auto` and `mountinfo` fall back to `mount8`
 * and say why, once, at warn.
 */
import type { Logger } from '../log.js';
import { probeSyscalls } from './kernel/probe.js';
import { MountSystem, type Mounts } from './mounts.js';
import { SyscallMounts } from './syscall-mounts.js';

export const MOUNT_LAYERS = ['auto', 'mountinfo', 'mount8'] as const;
export type MountLayerSetting = (typeof MOUNT_LAYERS)[number];

/** The environment variable that chooses the layer (`serve --mount-layer` overrides it). */
export const MOUNT_LAYER_ENV = 'SHAREDPROP_MOUNT_LAYER';

/** A setting as given (flag or environment); unset or empty is `auto`. */
export function parseMountLayer(value: string | undefined): MountLayerSetting {
  if (value === undefined || value === '') return 'auto';
  const known = MOUNT_LAYERS.find((layer) => layer === value);
  if (known === undefined) {
    throw new Error(
      `mount layer ${JSON.stringify(value)} is not one of ${MOUNT_LAYERS.join(', ')} (--mount-layer, ${MOUNT_LAYER_ENV})`,
    );
  }
  return known;
}

/** The layer `setting` names, on this machine; `probe` throws when the system calls cannot run. */
export function createMountLayer(
  setting: MountLayerSetting,
  log: Logger,
  probe: () => void = probeSyscalls,
): Mounts {
  if (setting === 'mount8') {
    log.warn('mount layer: mount(8) and umount(8) processes, as chosen', { mountLayer: setting });
    return new MountSystem();
  }
  let mounts: SyscallMounts;
  try {
    probe();
    mounts = new SyscallMounts({ fallback: setting === 'mountinfo' });
    log.info('mount layer: system calls', { mountLayer: setting, tree: mounts.tree.mode });
  } catch (error) {
    log.warn(
      'mount layer: the system calls cannot be made here; mount(8) and umount(8) processes instead',
      { mountLayer: setting, reason: error instanceof Error ? error.message : String(error) },
    );
    return new MountSystem();
  }
  return mounts;
}
