/** Finds the dockerd process that serves a Unix socket, from /proc alone. */
import { readFile, readdir, readlink } from 'node:fs/promises';

/** Inodes of listening Unix sockets bound at `path` (from /proc/net/unix). */
export function listeningInodes(procNetUnix: string, path: string): Set<string> {
  const inodes = new Set<string>();
  for (const line of procNetUnix.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    // Num RefCount Protocol Flags Type St Inode Path; flag 0x10000 is "listening".
    if (fields.length >= 8 && fields.slice(7).join(' ') === path) {
      if ((parseInt(fields[3] ?? '0', 16) & 0x10000) !== 0) inodes.add(fields[6] ?? '');
    }
  }
  return inodes;
}

/** The pid of the process named dockerd that holds the listening socket at `socketPath`. */
export async function findDaemonPid(socketPath: string): Promise<number | undefined> {
  if (!socketPath) return undefined;
  const inodes = listeningInodes(await readFile('/proc/net/unix', 'utf8'), socketPath);
  if (inodes.size === 0) return undefined;
  const holders: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fds = await readdir(`/proc/${entry}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${entry}/fd/${fd}`).catch(() => '');
      const match = /^socket:\[(\d+)\]$/.exec(target);
      if (match && inodes.has(match[1] ?? '')) {
        holders.push(Number(entry));
        break;
      }
    }
  }
  for (const pid of holders) {
    const comm = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim();
    if (comm === 'dockerd') return pid;
  }
  return holders[0];
}
