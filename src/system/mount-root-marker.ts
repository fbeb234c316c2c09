/**
 * The file that marks a mount root (read by the runtime wrapper). The wrapper trusts it only when
 * root owns it and the mount root and no one else can write either (src/runtime/root-file.ts):
 * whatever the umask, a new root is 0755 and an old one loses group and other write, and the file
 * is written anew (exclusive create, 0644, renamed into place), so an old one's owner, mode or
 * symlink does not survive.
 */
import { chmod, open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';

/** `made`: the mount root was created just now (else an old one, which only loses write bits). */
export async function writeMountRootMarker(
  root: string,
  file: { name: string; content: string },
  made: boolean,
): Promise<void> {
  const { mode } = await stat(root);
  const wanted = made ? 0o755 : mode & 0o7755;
  if ((mode & 0o7777) !== wanted) await chmod(root, wanted);
  const temp = path.join(root, `${file.name}.tmp`);
  await rm(temp, { force: true });
  const handle = await open(temp, 'wx', 0o644);
  try {
    await handle.chmod(0o644);
    await handle.writeFile(file.content);
  } finally {
    await handle.close();
  }
  await rename(temp, path.join(root, file.name));
}
