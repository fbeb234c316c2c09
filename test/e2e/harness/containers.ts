/** What the scenarios share about containers that mount, and waiting for what they do. */
import { stat } from 'node:fs/promises';

/** What a container needs to call mount(2): CAP_SYS_ADMIN, without seccomp/AppArmor vetoes. */
export const CAN_MOUNT = [
  '--cap-add',
  'SYS_ADMIN',
  '--security-opt',
  'seccomp=unconfined',
  '--security-opt',
  'apparmor=unconfined',
];

/** A container whose mounts under sharedprop volumes reach the host and other containers. */
export const WITH_RUNTIME = ['--runtime', 'sharedprop', ...CAN_MOUNT];

/**
 * An l3 agent's `ip netns add qrouter-1`, in busybox terms: a child in a network namespace of its
 * own (waited for, not slept for), its nsfs file bound at /run/netns/qrouter-1, and the
 * namespace's id written to /run/netns/qrouter-1.id (whole: renamed into place) once the bind is
 * made; then it stays up.
 */
export const MAKE_QROUTER_NETNS = [
  'sh',
  '-c',
  'unshare -n sleep 3600 & child=$!; ' +
    'until [ "$(readlink /proc/$child/ns/net)" != "$(readlink /proc/self/ns/net)" ]; do sleep 0.05; done; ' +
    'touch /run/netns/qrouter-1 && ' +
    'mount --bind /proc/$child/ns/net /run/netns/qrouter-1 && ' +
    'readlink /proc/$child/ns/net > /run/netns/.qrouter-1.id && ' +
    'mv /run/netns/.qrouter-1.id /run/netns/qrouter-1.id && sleep 3600',
];

/** Waits for a file a container makes (seen on the host through the volume). */
export async function waitForFile(file: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (
      await stat(file).then(
        () => true,
        () => false,
      )
    ) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${file} did not appear within ${timeoutMs} ms`);
}
