/** A KindContext over the fakes, for the unit tests of each volume kind. */
import type { KindContext } from '../../src/driver/kinds/kind.js';
import type { VolumeRecord } from '../../src/model/record.js';
import { MountSnapshot } from '../../src/system/mount-snapshot.js';
import { FakeMounts, FakeStore } from './driver-fakes.js';
import { silentLogger } from './silent-logger.js';

export const KIND_MOUNT_ROOT = '/fake/mounts';

export function kindContext(over: Partial<KindContext> = {}) {
  const store = new FakeStore();
  const mounts = new FakeMounts();
  /** Volumes the context was asked to put back, and to refuse. */
  const remounted: string[] = [];
  const broken: string[] = [];
  const ctx: KindContext = {
    config: { dataRoot: '/fake/data', mountRoot: KIND_MOUNT_ROOT, logger: silentLogger() },
    store,
    mounts,
    // Never older than the last change: each question reads the fake table again.
    snapshot: new MountSnapshot(mounts.readerAbout(KIND_MOUNT_ROOT), -1),
    log: silentLogger(),
    mountpoint: (name) => `${KIND_MOUNT_ROOT}/${name}`,
    hostDataRoot: () => '/host/data',
    records: () => store.volumes.values(),
    bootId: () => 'boot-1',
    ensureMounted: async (record: VolumeRecord) => {
      remounted.push(record.name);
    },
    markBroken: (name) => broken.push(name),
    ...over,
  };
  return { ctx, store, mounts, remounted, broken };
}

export function recordOf(name: string, options: VolumeRecord['options']): VolumeRecord {
  return { name, createdAt: 't', options, mounts: new Map() };
}
