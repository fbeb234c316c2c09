/** The volume driver as a plain interface: no HTTP here, and no mounts in the protocol layer. */
import type { RawOptions } from '../model/options.js';
import type { VolumeStatus } from '../model/status.js';

export interface VolumeInfo {
  name: string;
  mountpoint: string;
  createdAt: string;
  /** Only Get fills it in (dockerd's List needs no Status). */
  status?: VolumeStatus;
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
