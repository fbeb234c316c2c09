/**
 * What the doctor's check tests share: a mount table recorded from a host running the managed
 * plugin, and the roots of the containers taken for running.
 */
import type { RunningRoots } from '../../../src/doctor/checks.js';
import { parseMountinfo } from '../../../src/system/mountinfo.js';
import { DEFAULT_ENGINE_STORAGE } from '../../../src/system/engine-storage.js';

export const PROP = '/var/lib/docker/plugins/0123abcd/propagated-mount';
/** The super options of container `id`'s root overlay in dockerd's storage. */
export const containerLayers = (id: string) =>
  `rw,lowerdir=/var/lib/docker/overlay2/l/A,upperdir=/var/lib/docker/overlay2/${id}/diff,workdir=/var/lib/docker/overlay2/${id}/work`;

// Recorded from a host running the managed plugin: a volume mount point, a leaked bind of a
// dead container's /etc (overlay 0:61), a live container's bind (overlay 0:62), a netns file.
export const host = parseMountinfo(`
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
90 22 8:1 /var/lib/docker/plugins/0123abcd/propagated-mount ${PROP} rw,relatime shared:300 - ext4 /dev/sda1 rw
91 90 8:1 /var/lib/sharedprop/volumes/netns/_data ${PROP}/netns rw,relatime shared:301 - ext4 /dev/sda1 rw
92 91 0:61 /etc ${PROP}/netns/etc rw,relatime shared:302 - overlay overlay ${containerLayers('dead')}
93 91 0:62 /srv ${PROP}/netns/srv rw,relatime shared:303 - overlay overlay ${containerLayers('live')}
94 91 0:4 net:[4026532281] ${PROP}/netns/qrouter-1 rw shared:304 - nsfs nsfs rw
95 22 8:1 /var/lib/sharedprop/volumes/plain/_data ${PROP}/plain rw,relatime master:301 - ext4 /dev/sda1 rw
96 22 8:1 /var/lib/sharedprop/volumes/dup/_data ${PROP}/dup rw,relatime shared:310 - ext4 /dev/sda1 rw
97 96 8:1 /var/lib/sharedprop/volumes/dup/_data ${PROP}/dup rw,relatime shared:311 - ext4 /dev/sda1 rw
98 22 8:1 /var/lib/sharedprop/volumes/twice/_data ${PROP}/twice rw,relatime shared:320 - ext4 /dev/sda1 rw
99 98 8:1 /var/lib/sharedprop/volumes/twice/_data ${PROP}/twice rw,relatime shared:320 - ext4 /dev/sda1 rw
`);

export const runningWith = (devices: string[], roots: string[] = []): RunningRoots => ({
  devices: new Set(devices),
  roots: roots.map((root) => ({ device: '8:1', root })),
  storage: DEFAULT_ENGINE_STORAGE,
  layers: { device: '8:1', root: '/var/lib/docker/vfs' },
});
