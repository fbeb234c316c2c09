/** A volume's Status: what the driver knows of it, and the JSON `docker volume inspect` shows. */
import { z } from 'zod';
import type { MountCounts } from './counts.js';
import type { PropagationOption } from './options.js';
import { countsFromJson } from './record.js';

export interface Submount {
  /** Relative to the volume's mount point, starting with "/". */
  path: string;
  fsType: string;
  source: string;
  root: string;
}

export interface VolumeStatus {
  propagation: PropagationOption;
  /**
   * `directory` (its data in the data root), `tmpfs` (in memory, empty after a reboot) or `path`
   * (a host directory it adopted; `dataPath` names it).
   */
  type: 'directory' | 'tmpfs' | 'path';
  /** A tmpfs's size limit, as Create set it. */
  size?: string;
  activeMounts: number;
  mountIds: MountCounts;
  /** False while the counts are only in memory (a full or read-only data root). */
  countsSaved: boolean;
  /** The mount point's propagation (`shared`), or how many mounts are there when not one. */
  mountPoint: string;
  submounts: Submount[];
  /** The volume's data directory as the host sees it; none for a tmpfs (its data is in memory). */
  dataPath?: string;
}

/** Status as JSON, for readers of `docker volume inspect` (the CLI reads it back with this). */
export const statusJsonSchema = z.object({
  propagation: z.string(),
  type: z.enum(['directory', 'tmpfs', 'path']).default('directory'),
  size: z.string().optional(),
  activeMounts: z.number().int().nonnegative(),
  mountIds: z.unknown().transform((value) => countsFromJson(value)),
  countsSaved: z.boolean().optional(),
  mountPoint: z.string(),
  submounts: z.array(
    z.object({ path: z.string(), fsType: z.string(), source: z.string(), root: z.string() }),
  ),
  dataPath: z.string().optional(),
});

export type StatusJson = z.infer<typeof statusJsonSchema>;
