/** The volume driver as a plain interface: no HTTP here, and no mounts in the protocol layer. */
import type { RawOptions } from '../model/options.js';

export interface VolumeInfo {
  name: string;
  mountpoint: string;
  createdAt: string;
  status: Record<string, unknown>;
}

export interface VolumeDriver {
  create(name: string, options: RawOptions): Promise<void>;
  remove(name: string): Promise<void>;
  /** Returns the mount point, counting one more use by `id`. */
  mount(name: string, id: string): Promise<string>;
  unmount(name: string, id: string): Promise<void>;
  path(name: string): Promise<string>;
  get(name: string): Promise<VolumeInfo>;
  /** Every volume. The same array is returned until the set of volumes changes. */
  list(): Promise<readonly VolumeInfo[]>;
  capabilities(): { scope: 'local' | 'global' };
}
