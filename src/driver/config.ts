/** How a driver is set up: its directories, its collaborators (faked in unit tests) and limits. */
import type { TmpfsSizeLimits } from '../model/tmpfs-size.js';
import type { Logger } from '../log.js';
import type { Store } from '../state/volume-store.js';
import type { Mounts } from '../system/mounts.js';

export interface DriverConfig {
  /** Where volume data and state live. */
  dataRoot: string;
  /** Where the mount points live (the managed plugin's propagated mount). */
  mountRoot: string;
  logger: Logger;
  /** The store and the mount system; unit tests pass fakes. */
  store?: Store;
  mounts?: Mounts;
  /** The kernel's id of this boot: counts from an earlier boot are void (no container survives). */
  bootIdFile?: string;
  /** How old the mount table behind Get's Status may be (ms); the README states the bound. */
  statusMaxAgeMs?: number;
  /**
   * Whether `-o path=` can adopt host directories: a host process sees them, the managed plugin
   * does not (its paths are inside its own rootfs). Default true.
   */
  hostPaths?: boolean;
  /**
   * The data root's path on the host, as the installer recorded it (the managed plugin's
   * HOST_DATA_DIR), for Status's dataPath; mountinfo's guess is used when it is unset or wrong.
   */
  hostDataRoot?: string;
  /**
   * Make the data root's mount private in the driver's namespace at start (the managed plugin:
   * its /data is the host's directory, and runc 1.2.7 and later apply the plugin's rshared root
   * propagation after pivot_root, which leaves /data shared with the host despite the manifest's
   * rprivate; a volume's mount point bound from it would then join the host's peer group, and
   * what containers mount in it would land under the data root instead of the mount point).
   */
  privateDataRoot?: boolean;
  /**
   * Host directories that a volume may never adopt, nor anything in or around them, besides
   * DEFAULT_RESERVED_PATHS (e.g. the `data-root` of a dockerd that moved it).
   */
  reservedPaths?: readonly string[];
  /**
   * How long start() may spend putting mount points back before it returns (ms, default 2,000).
   * dockerd gives a managed plugin about 12 s to listen (one dial after 0.5 s, four more 3 s
   * apart) and then stops it, and each mount point takes a few mount(8) calls: a thousand of
   * them take longer than that. What is left is restored in the background, and a Mount of a
   * volume not restored yet restores it itself first.
   */
  restoreInlineMs?: number;
  /**
   * Engine storage roots (checked and normalized): `reap=on-unmount` detaches an overlay only when
   * its upper and work directories lie in one. Default: DEFAULT_ENGINE_STORAGE.
   */
  engineStorage?: readonly string[];
  /**
   * The largest tmpfs `size` (the host's memory, or serve --tmpfs-max-size when lower) and the
   * default one (the cap, when set). Default: the host's memory, no cap.
   */
  tmpfsSizeLimits?: TmpfsSizeLimits;
}

/** dockerd's and containerd's state: never adopted, whatever the configuration says. */
export const DEFAULT_RESERVED_PATHS = [
  '/var/lib/docker',
  '/var/lib/containerd',
  '/run/docker',
  '/run/containerd',
];
