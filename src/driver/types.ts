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

/**
 * A result whose effect holds only if the answer reaches the caller. dockerd never sends the
 * Unmount for a Mount whose answer it did not get (a plugin killed or a connection cut
 * half-way), so such a count must not outlive the request. Whoever delivers the answer calls
 * `commit()` once it has been handed to the caller's connection, or `abandon()` if the connection
 * closed first. The first of the two calls decides; both are synchronous and never throw.
 */
export interface Tentative<T> {
  value: T;
  commit(): void;
  abandon(): void;
}

export interface Capabilities {
  scope: 'local' | 'global';
}

export interface VolumeDriver {
  create(name: string, options: RawOptions): Promise<void>;
  remove(name: string): Promise<void>;
  /**
   * Counts one more use by `id` and returns the mount point. The count stays tentative (in memory,
   * not saved) until the caller reports that the answer reached dockerd: see `Tentative`.
   */
  mount(name: string, id: string): Promise<Tentative<string>>;
  unmount(name: string, id: string): Promise<void>;
  path(name: string): Promise<string>;
  /** The same object while the volume, its mounts and the saving of its counts are unchanged. */
  get(name: string): Promise<VolumeInfo>;
  /** Every volume. The same array is returned until the set of volumes changes. */
  list(): Promise<readonly VolumeInfo[]>;
  /** The same object every time, unless the capabilities change. */
  capabilities(): Capabilities;
}
