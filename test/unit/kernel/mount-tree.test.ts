/**
 * The mount tree's small questions on the real kernel: whether a path leads, now, to the root of
 * a given mount (what every detach checks first), whether a mount has peers here, and a statx
 * that carries no mount ID.
 */
import { symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as C from '../../../src/system/kernel/constants.js';
import type { Statx } from '../../../src/system/kernel/calls.js';
import { pathLeadsTo } from '../../../src/system/detach.js';
import { MountTree, type MountNode } from '../../../src/system/mount-tree.js';
import {
  bindByPath,
  describeInNamespace,
  dirIn,
  scratch,
  setPropagation,
  tmpfsAt,
} from './namespace.js';

let base: string;
let cleanup: () => void;
beforeEach(() => ({ base, cleanup } = scratch()));
afterEach(() => cleanup());

describeInNamespace.each([
  ['listmount', false],
  ['mountinfo fallback', true],
])('pathLeadsTo (%s)', (_name, fallback) => {
  it('is true only at the root of that very mount, and false where the path leads nowhere', () => {
    const tree = new MountTree({ fallback });
    const mp = dirIn(base, 'mp');
    tmpfsAt(mp, 'sp-leads');
    const id = tree.idOf(tree.stat(C.AT_FDCWD, mp));
    expect(pathLeadsTo(tree, mp, id)).toBe(true);
    // Another mount's root; inside the mount (no mount root); the scratch mount itself.
    const other = dirIn(base, 'other');
    tmpfsAt(other, 'sp-other');
    expect(pathLeadsTo(tree, other, id)).toBe(false);
    expect(pathLeadsTo(tree, dirIn(mp, 'inside'), id)).toBe(false);
    // Nothing there (ENOENT), a file on the way (ENOTDIR), a symlink loop (ELOOP).
    writeFileSync(path.join(base, 'file'), '');
    symlinkSync('loop', path.join(base, 'loop'));
    for (const nowhere of ['missing', 'file/below', 'loop/below']) {
      expect(pathLeadsTo(tree, path.join(base, nowhere), id)).toBe(false);
    }
  });

  it('lets any other failure through', () => {
    const tree = new MountTree({ fallback });
    expect(() => pathLeadsTo(tree, `${base}/${'x'.repeat(300)}`, 1)).toThrow(/ENAMETOOLONG/);
  });

  it('hasPeers: only a shared mount with another of its group in this namespace has peers', () => {
    const tree = new MountTree({ fallback });
    const nodeAt = (p: string) => {
      const id = tree.idOf(tree.stat(C.AT_FDCWD, p));
      const view = tree.view({ path: p, ids: [id] });
      return { view, node: view.get(id) as MountNode };
    };
    const alone = dirIn(base, 'alone');
    tmpfsAt(alone, 'sp-alone');
    let { view, node } = nodeAt(alone);
    expect(view.hasPeers(node)).toBe(false); // private
    setPropagation(alone, 'shared');
    ({ view, node } = nodeAt(alone));
    expect(view.hasPeers(node)).toBe(false); // shared, in a group of its own
    bindByPath(alone, dirIn(base, 'peer'));
    ({ view, node } = nodeAt(alone));
    expect(view.hasPeers(node)).toBe(true);
  });
});

describe('MountTree.idOf', () => {
  it('refuses a statx without the mount ID it needs, naming the mask', () => {
    const tree = new MountTree({ fallback: true });
    const stat = { mask: 0x7ff, mountRoot: false } as unknown as Statx;
    expect(() => tree.idOf(stat)).toThrow('statx gave no mount ID (mask 2047)');
  });
});
