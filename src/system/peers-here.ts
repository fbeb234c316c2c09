/**
 * Whether a mount has peers in this namespace, remembered between the driver's own changes. No
 * system call lists a peer group: the answer costs a read of the whole mountinfo (20-70 ms at
 * 10,000 mounts), and Create asks it of the mount root's mount at every bind under a shared mount
 * root (the managed plugin's propagated mount, a systemd host).
 *
 * Only "no peer here" is remembered, and only while the table is known not to have changed: a
 * peer joins a group only by a mount attached in this namespace (a bind here, or one propagated
 * here from another namespace), and every attach makes poll(2) on an open mountinfo report
 * POLLPRI (proc(5)) at the next poll, however many changes there were. `ownChange` runs the
 * driver's own act between two polls, so that its change does not forget the answer; a change
 * seen outside it was someone else's, and forgets it. A "peers here" answer is never kept: a peer
 * can leave without an event (mount(2) MS_PRIVATE on it changes no table the poll watches).
 *
 * What cannot be told apart: another attach committed during the driver's own act (it may wait
 * there for the namespace's lock behind others) is taken for the driver's; so an answer is kept
 * at most `maxAgeMs` too. Where mountinfo cannot be opened or polled, nothing is remembered.
 */
import { openSync } from 'node:fs';
import { pollPriority } from './kernel/calls.js';
import { isErrno } from './kernel/ffi.js';
import type { MountNode } from './mount-tree.js';

/** "Changed since the last call?", or undefined when the kernel cannot tell. */
export type TableChanged = () => boolean | undefined;

/** Polls a descriptor of `file`, opened at first use and kept open for the process's life. */
export function pollTableChanges(
  file = '/proc/self/mountinfo',
  poll: (fd: number) => boolean = pollPriority,
): TableChanged {
  let fd: number | undefined;
  return () => {
    try {
      fd ??= openSync(file, 'r');
      return poll(fd);
    } catch (error) {
      // Closed behind its back: the number may be someone else's now, so it is only dropped.
      if (isErrno(error, 'EBADF')) fd = undefined;
      return undefined;
    }
  };
}

export class PeersHere {
  /** Mounts (by ID and group) with no peer here, and when that was read. */
  private readonly alone = new Map<string, number>();

  constructor(
    private readonly changed: TableChanged = pollTableChanges(),
    private readonly maxAgeMs = 1_000,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Runs one of the driver's own changes of the mount table. A change seen before it was made by
   * someone else: what is known is forgotten. The change it makes is consumed after it.
   */
  ownChange<T>(act: () => T): T {
    this.sawChanges();
    try {
      return act();
    } finally {
      if (this.changed() === undefined) this.alone.clear();
    }
  }

  /** Whether `node` has peers here: "no" remembered, or asked (`ask` reads the table). */
  has(node: MountNode, ask: (node: MountNode) => boolean): boolean {
    this.sawChanges();
    // The group is part of the key: a mount made shared anew is another question.
    const key = `${String(node.id)}:${String(node.sharedGroup)}`;
    const readAt = this.alone.get(key);
    if (readAt !== undefined && this.now() - readAt <= this.maxAgeMs) return false;
    this.alone.delete(key);
    const startedAt = this.now();
    const answer = ask(node);
    // Kept only when nothing changed while it was read.
    if (this.changed() !== false) this.alone.clear();
    else if (!answer) this.alone.set(key, startedAt);
    return answer;
  }

  private sawChanges(): void {
    if (this.changed() !== false) this.alone.clear();
  }
}
