/**
 * Whether a mount has peers in this namespace, remembered between the driver's own changes. No
 * system call lists a peer group: the answer costs a read of the whole mountinfo (20-70 ms at
 * 10,000 mounts), and Create asks it of the mount root's mount at every bind under a shared mount
 * root (the managed plugin's propagated mount, a systemd host). A peer here can only appear
 * through a mount made in this namespace, and the kernel says when the table changed: poll(2) on
 * an open mountinfo reports POLLPRI once per change (proc(5)). So the answers are kept while every
 * change since they were read was the driver's own: `ownChange` runs the driver's act between two
 * polls, and a change seen before it was someone else's, which forgets them all.
 *
 * What cannot be told apart: a peer made by someone else during the driver's own act (between the
 * two polls, microseconds) is taken for the driver's change, and is seen at the next change of
 * the table by anyone else. Where mountinfo cannot be opened or polled, nothing is remembered.
 */
import { openSync } from 'node:fs';
import { pollPriority } from './kernel/calls.js';
import type { MountNode } from './mount-tree.js';

/** "Changed since the last call?", or undefined when the kernel cannot tell. */
export type TableChanged = () => boolean | undefined;

/** Polls a descriptor of `file` (opened at first use, kept open for the process's life). */
export function pollTableChanges(file = '/proc/self/mountinfo'): TableChanged {
  let fd: number | undefined;
  let broken = false;
  return () => {
    if (broken) return undefined;
    try {
      fd ??= openSync(file, 'r');
      return pollPriority(fd);
    } catch {
      broken = true;
      return undefined;
    }
  };
}

export class PeersHere {
  private readonly known = new Map<string, boolean>();

  constructor(private readonly changed: TableChanged = pollTableChanges()) {}

  /**
   * Runs one of the driver's own changes of the mount table. A change seen before it was made by
   * someone else: what is known is forgotten. The change it makes is consumed after it.
   */
  ownChange<T>(act: () => T): T {
    this.sawChanges();
    try {
      return act();
    } finally {
      if (this.changed() === undefined) this.known.clear();
    }
  }

  /** Whether `node` has peers here: remembered, or asked (`ask` reads the table) and kept. */
  has(node: MountNode, ask: (node: MountNode) => boolean): boolean {
    this.sawChanges();
    // The group is part of the key: a mount made shared anew is another question.
    const key = `${String(node.id)}:${String(node.sharedGroup)}`;
    const known = this.known.get(key);
    if (known !== undefined) return known;
    const answer = ask(node);
    if (this.changed() !== false) {
      // The table changed while it was read (or cannot tell): not kept.
      this.known.clear();
      return answer;
    }
    this.known.set(key, answer);
    return answer;
  }

  private sawChanges(): void {
    if (this.changed() !== false) this.known.clear();
  }
}
