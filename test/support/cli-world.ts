/**
 * A recorded managed-plugin host for the CLI tests: plugin `foo` (reference foo:latest), one
 * volume `v` whose mount point shows twice on the host (the data root and the propagated mount
 * share peer group 1) with a leaked bind of a dead container's /etc under it, shown twice too.
 */
import type { ContainerDetails, PluginSummary } from '../../src/docker/engine-client.js';
import { FakeEngine, fakeHost, type FakeEngineState, type FakeHostState } from './cli-fakes.js';

export const PLUGIN_ID = '0123abcd';
export const PROP = `/var/lib/docker/plugins/${PLUGIN_ID}/propagated-mount`;
export const RUNTIME_PATH = '/usr/local/bin/sharedprop-runtime';
/** dockerd's overlay2 storage: where the dead container's root overlay has its layers. */
const STORAGE = '/var/lib/docker/overlay2';

export const HOST_MOUNTS = `
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
90 22 8:1 /var/lib/docker/plugins/${PLUGIN_ID}/propagated-mount ${PROP} rw,relatime shared:1 - ext4 /dev/sda1 rw
91 22 8:1 /var/lib/sharedprop/volumes/v/_data ${PROP}/v rw,relatime shared:301 - ext4 /dev/sda1 rw
92 90 8:1 /var/lib/sharedprop/volumes/v/_data ${PROP}/v rw,relatime shared:301 - ext4 /dev/sda1 rw
93 91 0:61 /etc ${PROP}/v/etc rw,relatime shared:302 - overlay overlay rw,lowerdir=${STORAGE}/l/A,upperdir=${STORAGE}/dead/diff,workdir=${STORAGE}/dead/work
94 92 0:61 /etc ${PROP}/v/etc rw,relatime shared:302 - overlay overlay rw,lowerdir=${STORAGE}/l/A,upperdir=${STORAGE}/dead/diff,workdir=${STORAGE}/dead/work
`;

/** dockerd's own table when its copy of the propagated mount is private (a failed enable). */
export const DAEMON_MOUNTS_PRIVATE_PROP = `
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
90 22 8:1 /var/lib/docker/plugins/${PLUGIN_ID}/propagated-mount ${PROP} rw,relatime - ext4 /dev/sda1 rw
`;

export function fooPlugin(overrides: Partial<PluginSummary> = {}): PluginSummary {
  return {
    id: PLUGIN_ID,
    name: 'foo:latest',
    enabled: true,
    propagatedMount: '/mnt/volumes',
    socket: 'foo.sock',
    ...overrides,
  };
}

/** A running container (pid 700) whose root is overlay 0:62 and that mounts volume v. */
export const AGENT: ContainerDetails = {
  id: 'c0ffee',
  name: 'agent',
  running: true,
  pid: 700,
  mounts: [{ type: 'volume', name: 'v', driver: 'foo:latest', destination: '/run/netns' }],
};

export const AGENT_MOUNTS_SLAVE = `
800 700 0:62 / / rw - overlay overlay rw
801 800 8:1 /var/lib/sharedprop/volumes/v/_data /run/netns rw master:301 - ext4 /dev/sda1 rw
`;

export function fooEngine(state: FakeEngineState = {}): FakeEngine {
  return new FakeEngine({
    plugins: [fooPlugin()],
    volumes: [{ name: 'v', driver: 'foo:latest', mountpoint: '/mnt/volumes/v' }],
    containers: [AGENT],
    info: { runtimes: { runc: { path: 'runc' }, bar: { path: RUNTIME_PATH } } },
    ...state,
  });
}

export function fooHost(state: FakeHostState = {}) {
  return fakeHost({
    mounts: HOST_MOUNTS,
    processMounts: { 42: HOST_MOUNTS, 700: AGENT_MOUNTS_SLAVE },
    daemonPid: 42,
    sameNamespace: true,
    executables: [RUNTIME_PATH],
    activate: { [`/run/docker/plugins/${PLUGIN_ID}/foo.sock`]: ['VolumeDriver'] },
    ...state,
  });
}
