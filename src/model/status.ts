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
  activeMounts: number;
  mountIds: MountCounts;
  /** False while the counts are only in memory (a full or read-only data root). */
  countsSaved: boolean;
  /** The mount point's propagation (`shared`), or how many mounts are there when not one. */
  mountPoint: string;
  submounts: Submount[];
  /** The volume's data directory as the host sees it. */
  dataPath: string;
}

/** Status as JSON, for readers of `docker volume inspect` (the CLI reads it back with this). */
export const statusJsonSchema = z.object({
  propagation: z.string(),
  activeMounts: z.number().int().nonnegative(),
  mountIds: z.unknown().transform((value) => countsFromJson(value)),
  countsSaved: z.boolean().optional(),
  mountPoint: z.string(),
  submounts: z.array(
    z.object({ path: z.string(), fsType: z.string(), source: z.string(), root: z.string() }),
  ),
  dataPath: z.string(),
});

export type StatusJson = z.infer<typeof statusJsonSchema>;
