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
