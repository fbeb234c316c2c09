/**
 * detach.ts when a path changes between its system calls, on the real kernel: the race is made by
 * renames done inside the tree's statx (the moment between the check and the unmount), so that
 * every window is met on every run. Two directories, each with a tmpfs at `m`, swap names.
 */
import { closeSync, openSync, renameSync } from 'node:fs';
import path from 'node:path';
import { detachChecked, detachNodes } from '../../../src/system/detach.js';
import type { DetachReport } from '../../../src/system/mounts.js';
import { umount2 } from '../../../src/system/kernel/calls.js';
import { MountTree, type MountId, type MountNode } from '../../../src/system/mount-tree.js';
import { describeInNamespace, dirIn, mountsAtPath, scratch, tmpfsAt } from './namespace.js';

let base: string;
let cleanup: () => void;
beforeEach(() => ({ base, cleanup } = scratch()));
afterEach(() => cleanup());

/** `x/m` holds tmpfs `first`, `other/m` tmpfs `second`; `swap()` exchanges the two directories. */
function twoMounts() {
  const at = (name: string) => path.join(base, name);
  tmpfsAt(dirIn(base, 'x/m'), 'first');
  tmpfsAt(dirIn(base, 'other/m'), 'second');
  const target = path.join(at('x'), 'm');
  const swap = () => {
    renameSync(at('x'), at('swapping'));
    renameSync(at('other'), at('x'));
    renameSync(at('swapping'), at('other'));
  };
  const sourceAt = (dir: string) => mountsAtPath(path.join(at(dir), 'm')).map((e) => e.source);
  return { target, swap, sourceAt };
}

/** `tree`, with `before(call)` run as its statx is asked (call 1, 2, ...) and `after(call)` once it answered. */
function racing(
  tree: MountTree,
  hooks: { before?: (call: number) => void; after?: (call: number) => void },
): MountTree {
  let calls = 0;
  const wrapped = Object.create(tree) as MountTree;
  wrapped.stat = (fd, p) => {
    calls += 1;
    hooks.before?.(calls);
    const answer = tree.stat(fd, p);
    hooks.after?.(calls);
    return answer;
  };
  return wrapped;
}

const idAt = (tree: MountTree, target: string): MountId => tree.idOf(tree.stat(-100, target));

describeInNamespace('detaching by identity, when the path changes meanwhile', () => {
  it('swapped between the check and the unmount: the other mount went, and it is said (listmount)', () => {
    const tree = new MountTree({ fallback: false });
    if (tree.mode !== 'listmount')
      throw new Error('this kernel has no statmount: see mount-tree-detect');
    const { target, swap, sourceAt } = twoMounts();
    const first = idAt(tree, target);
    const swapped = racing(tree, { after: swap });
    expect(() => detachChecked(swapped, tree.view(), target, first)).toThrow(
      /detached another mount than .*: the path changed between the check and the unmount/,
    );
    // What detach.ts's header says remains of the race: seen, not undone.
    expect(sourceAt('other')).toEqual(['first']);
    expect(sourceAt('x')).toEqual([]);
  });

  it('busy, then swapped before the lazy detach: elsewhere, and neither mount is touched', () => {
    for (const fallback of [false, true]) {
      const tree = new MountTree({ fallback });
      const { target, swap, sourceAt } = twoMounts();
      const first = idAt(tree, target);
      // A file open in the first makes its plain unmount fail with EBUSY.
      const busy = openSync(path.join(target, 'open'), 'w');
      try {
        const swapped = racing(tree, { before: (call) => call === 2 && swap() });
        expect(detachChecked(swapped, tree.view(), target, first)).toBe('elsewhere');
        expect(sourceAt('other')).toEqual(['first']);
        expect(sourceAt('x')).toEqual(['second']);
      } finally {
        closeSync(busy);
      }
      umount2(path.join(base, 'x/m'));
      umount2(path.join(base, 'other/m'));
    }
  });

  it('busy and still there: detached lazily', () => {
    const tree = new MountTree({ fallback: false });
    const { target, sourceAt } = twoMounts();
    const busy = openSync(path.join(target, 'open'), 'w');
    try {
      expect(detachChecked(tree, tree.view(), target, idAt(tree, target))).toBe('lazy');
      expect(sourceAt('x')).toEqual([]);
      expect(sourceAt('other')).toEqual(['second']);
    } finally {
      closeSync(busy);
    }
  });

  it('unmounted by someone else between the check and the unmount: gone', () => {
    const tree = new MountTree({ fallback: false });
    const { target, sourceAt } = twoMounts();
    const first = idAt(tree, target);
    const raced = racing(tree, { after: () => umount2(target) });
    expect(detachChecked(raced, tree.view(), target, first)).toBe('gone');
    expect(sourceAt('x')).toEqual([]);
    expect(sourceAt('other')).toEqual(['second']);
  });

  it('any other failure of the unmount goes through (the path renamed away: ENOENT)', () => {
    const tree = new MountTree({ fallback: false });
    const { target, sourceAt } = twoMounts();
    const first = idAt(tree, target);
    const raced = racing(tree, {
      after: () => renameSync(path.join(base, 'x'), path.join(base, 'away')),
    });
    expect(() => detachChecked(raced, tree.view(), target, first)).toThrow(/ENOENT/);
    expect(sourceAt('away')).toEqual(['first']);
  });

  it('a walk of several: one unmounted meanwhile is not reported as detached by this walk', async () => {
    const tree = new MountTree({ fallback: false });
    const { target } = twoMounts();
    const other = path.join(base, 'other/m');
    const nodes = [target, other].map((p) => ({
      node: tree.view().get(idAt(tree, p)) as MountNode,
      depth: 1,
    }));
    // The newest (`other/m`) is checked first, then unmounted by someone else.
    const raced = racing(tree, { after: (call) => call === 1 && umount2(other) });
    const report: DetachReport = { detached: [], lazy: [] };
    expect(await detachNodes(raced, tree.view(), nodes, report)).toEqual([]);
    expect(report).toEqual({ detached: [target], lazy: [] });
    expect(mountsAtPath(target)).toEqual([]);
    expect(mountsAtPath(other)).toEqual([]);
  });

  it('a mount its path never leads to is handed back, after one round that detached nothing', async () => {
    const tree = new MountTree({ fallback: false });
    const { target, sourceAt } = twoMounts();
    const node = tree.view().get(idAt(tree, target)) as MountNode;
    // Listed at a path that leads elsewhere (another mount, in another directory).
    const astray = { ...node, mountPoint: path.join(base, 'other/m') };
    const report: DetachReport = { detached: [], lazy: [] };
    expect(await detachNodes(tree, tree.view(), [{ node: astray, depth: 1 }], report)).toEqual([
      astray,
    ]);
    expect(report).toEqual({ detached: [], lazy: [] });
    expect(sourceAt('x')).toEqual(['first']);
    expect(sourceAt('other')).toEqual(['second']);
  });
});
