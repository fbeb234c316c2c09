/** A volume that is a tmpfs of its own at its mount point: in memory, empty after a reboot (like /run). */
import { tmpfsMountOptions } from '../../model/options.js';
import type { MountEntry } from '../../system/mountinfo.js';
import { stackAt, type KindContext, type VolumeKind } from './kind.js';
import { detachMountPoint, removeRetiringFirst } from './retire-first.js';

export function tmpfsKind(ctx: KindContext): VolumeKind<'tmpfs'> {
  return {
    kind: 'tmpfs',
    serialCreate: false,
    checkCreate: async () => undefined,
    // Its contents are in memory: nothing of it in the data root but its record.
    dataDirectory: () => undefined,
    source: async (record) => ({ kind: 'tmpfs', options: tmpfsMountOptions(record.options) }),
    /** Its identity, so that start-up knows it for its own after a Remove killed half-way. */
    async mounted(record, top) {
      const bootId = ctx.bootId();
      if (bootId === undefined) return;
      await ctx.store
        .saveTmpfsIdentity(record.name, { bootId, device: top.device, mountId: top.id })
        .catch((error: unknown) =>
          ctx.log.warn(
            "could not record the tmpfs's identity; if a Remove of it is interrupted, start-up will leave it mounted",
            { volume: record.name, error: String(error) },
          ),
        );
    },
    /** One shared tmpfs at the mount point, and the mount point shows that very filesystem. */
    async isSound(record) {
      const mountpoint = ctx.mountpoint(record.name);
      const stack = await stackAt(ctx, mountpoint);
      const only = stack.length === 1 ? (stack[0] as MountEntry) : undefined;
      return (
        only !== undefined &&
        only.fsType === 'tmpfs' &&
        only.sharedGroup !== undefined &&
        (await ctx.mounts.showsDevice(mountpoint, only.device))
      );
    },
    remove: (record) => removeRetiringFirst(ctx, record),
    undoCreate: (name) => detachMountPoint(ctx, name),
    reapsOnUnmount: (options) => options.reap === 'on-unmount',
    status: (record) => ({
      type: 'tmpfs',
      ...(record.options.size === undefined ? {} : { size: record.options.size }),
    }),
  };
}
