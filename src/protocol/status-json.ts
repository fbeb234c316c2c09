/** A volume's Status as the protocol answers it (the shape `model/status.ts` reads back). */
import { countsToObject } from '../model/counts.js';
import type { VolumeStatus } from '../model/status.js';

export function statusJson(status: VolumeStatus) {
  return {
    propagation: status.propagation,
    type: status.type,
    ...(status.size === undefined ? {} : { size: status.size }),
    activeMounts: status.activeMounts,
    mountIds: countsToObject(status.mountIds),
    countsSaved: status.countsSaved,
    mountPoint: status.mountPoint,
    submounts: status.submounts,
    ...(status.dataPath === undefined ? {} : { dataPath: status.dataPath }),
  };
}
