/** A volume whose data is a directory in the data root (`volumes/<name>/_data`), bound at its mount point. */
import path from 'node:path';
import { VolumeError } from '../../model/errors.js';
import type { MountSource } from '../../system/mounts.js';
import {
  bindIsSound,
  type KindContext,
  type OptionsOf,
  type RecordOf,
  type VolumeKind,
} from './kind.js';
import { detachMountPoint, removeRetiringFirst } from './retire-first.js';

export function directoryKind(ctx: KindContext): VolumeKind<'directory'> {
  return {
    kind: 'directory',
    serialCreate: false,
    checkCreate: async () => undefined,
    dataDirectory: ({ uid, gid, mode }: OptionsOf<'directory'>) => ({ uid, gid, mode }),
    async source(record: RecordOf<'directory'>): Promise<MountSource> {
      if (!(await ctx.store.hasData(record.name))) {
        throw new VolumeError(
          'internal',
          `volume ${JSON.stringify(record.name)}: its data directory is missing from the data root`,
        );
      }
      return { kind: 'bind', directory: ctx.store.dataDir(record.name) };
    },
    mounted: async () => undefined,
    isSound: (record) =>
      bindIsSound(ctx, ctx.mountpoint(record.name), ctx.store.dataDir(record.name)),
    remove: (record) => removeRetiringFirst(ctx, record),
    undoCreate: (name) => detachMountPoint(ctx, name),
    reapsOnUnmount: (options) => options.reap === 'on-unmount',
    status: (record) => ({
      type: 'directory',
      dataPath: path.join(ctx.hostDataRoot(), 'volumes', record.name, '_data'),
    }),
  };
}
