/**
 * Create asks whether the mount root's mount has peers in this namespace (a whole read of
 * mountinfo) only when the table changed since the driver's own last change (issue 25: Create
 * at 10,000 volumes under a shared mount root). What is remembered must never hide a peer that
 * someone else made: proven on the real kernel, where poll(2) on mountinfo says when it changed.
 */
import { constants } from 'node:os';
import path from 'node:path';
import {
  mountSetattr,
  openDirectory,
  pollPriority,
  withFd,
} from '../../../src/system/kernel/calls.js';
import type { MountNode } from '../../../src/system/mount-tree.js';
import { KernelError } from '../../../src/system/kernel/ffi.js';
import { PeersHere, pollTableChanges } from '../../../src/system/peers-here.js';
import { SyscallMounts } from '../../../src/system/syscall-mounts.js';
import {
  bindByPath,
  describeInNamespace,
  dirIn,
  mountsAtPath,
  scratch,
  tmpfsAt,
} from './namespace.js';

const node = (id: number, sharedGroup?: number): MountNode => ({
  id,
  parent: 1,
  oldId: id,
  mountPoint: `/m${id}`,
  sharedGroup,
});

describe('PeersHere', () => {
  function counted(changes: (boolean | undefined)[], answer = false) {
    let asked = 0;
    let clock = 0;
    const peers = new PeersHere(
      () => (changes.length > 0 ? changes.shift() : false),
      1_000,
      () => clock,
    );
    const ask = () => {
      asked++;
      return answer;
    };
    return { peers, ask, asked: () => asked, tick: (ms: number) => (clock += ms) };
  }

  it('asks once while every change of the table is its own', () => {
    const { peers, ask, asked } = counted([]);
    for (let i = 0; i < 5; i++) {
      expect(peers.has(node(7, 3), ask)).toBe(false);
      peers.ownChange(() => undefined);
    }
    expect(asked()).toBe(1);
  });

  it('consumes the change its own act made, as poll(2) reports it: once, until read', () => {
    // As the kernel: a change is pending from the moment it is made until the next poll.
    let pending = false;
    const changed = () => {
      const was = pending;
      pending = false;
      return was;
    };
    const peers = new PeersHere(changed, 1_000, () => 0);
    let asked = 0;
    const ask = () => {
      asked++;
      return false;
    };
    peers.has(node(7, 3), ask);
    peers.ownChange(() => (pending = true));
    peers.has(node(7, 3), ask);
    expect(asked).toBe(1);
    pending = true; // someone else's change
    peers.has(node(7, 3), ask);
    expect(asked).toBe(2);
  });

  it('asks again after a change it did not make, or for another mount or group', () => {
    // before has, after the ask; before own change, after it; then someone else's change.
    const { peers, ask, asked } = counted([false, false, false, true, true]);
    peers.has(node(7, 3), ask);
    peers.ownChange(() => undefined);
    peers.has(node(7, 3), ask);
    expect(asked()).toBe(2);
    peers.has(node(7, 4), ask);
    peers.has(node(8, 4), ask);
    expect(asked()).toBe(4);
  });

  it('never keeps "peers here": a peer can leave without an event', () => {
    const { peers, ask, asked } = counted([], true);
    expect(peers.has(node(7, 3), ask)).toBe(true);
    expect(peers.has(node(7, 3), ask)).toBe(true);
    expect(asked()).toBe(2);
  });

  it('keeps "no peer here" for at most a second', () => {
    const { peers, ask, asked, tick } = counted([]);
    tick(5_000); // a clock that is not at zero: what counts is the time since the read
    peers.has(node(7, 3), ask);
    tick(1_000);
    peers.has(node(7, 3), ask);
    expect(asked()).toBe(1);
    tick(1);
    peers.has(node(7, 3), ask);
    expect(asked()).toBe(2);
  });

  it('keeps nothing read while the table changed, or when the kernel cannot tell', () => {
    const { peers, ask, asked } = counted([false, true]);
    peers.has(node(7, 3), ask);
    peers.has(node(7, 3), ask);
    expect(asked()).toBe(2);
    const blind = counted([undefined, undefined, undefined, undefined, undefined]);
    blind.peers.has(node(7, 3), blind.ask);
    blind.peers.ownChange(() => undefined);
    blind.peers.has(node(7, 3), blind.ask);
    expect(blind.asked()).toBe(2);
  });

  it('forgets what it knew when the kernel cannot tell after its own change', () => {
    // before has, after the ask; before own change, after it (cannot tell); before the next has.
    const { peers, ask, asked } = counted([false, false, false, undefined, false]);
    peers.has(node(7, 3), ask);
    peers.ownChange(() => undefined);
    peers.has(node(7, 3), ask);
    expect(asked()).toBe(2);
  });

  it('keeps what it knew when its own change fails, and lets the error through', () => {
    const { peers, ask, asked } = counted([]);
    peers.has(node(7, 3), ask);
    expect(() =>
      peers.ownChange(() => {
        throw new Error('EINVAL');
      }),
    ).toThrow('EINVAL');
    peers.has(node(7, 3), ask);
    expect(asked()).toBe(1);
  });
});

describeInNamespace('on the real kernel', () => {
  let base: string;
  let cleanup: () => void;
  beforeEach(() => ({ base, cleanup } = scratch()));
  afterEach(() => cleanup());

  // Other test files mount in this namespace at the same time: only what this test does is sure.
  it('poll of mountinfo reports a change of the table; a file not there cannot tell', () => {
    const changed = pollTableChanges();
    changed();
    tmpfsAt(dirIn(base, 't'), 'sp-poll');
    expect(changed()).toBe(true);
    expect(pollTableChanges(path.join(base, 'missing'))()).toBeUndefined();
  });

  it('a descriptor closed behind its back cannot tell once, then is opened again', () => {
    // EBADF simulated: closing a real descriptor would let another open take its number.
    const polled: number[] = [];
    let closed = false;
    const changed = pollTableChanges('/proc/self/mountinfo', (fd) => {
      polled.push(fd);
      if (closed) {
        closed = false;
        throw new KernelError('poll', constants.errno.EBADF);
      }
      return false;
    });
    expect(changed()).toBe(false);
    closed = true;
    expect(changed()).toBeUndefined();
    expect(changed()).toBe(false);
    const [first, again, reopened] = polled;
    expect(again).toBe(first);
    expect(reopened).not.toBe(first); // a new descriptor (the old number is only dropped)
  });

  it('any other failure of the poll cannot tell once, and keeps its descriptor', () => {
    const polled: number[] = [];
    let failing = true;
    const changed = pollTableChanges('/proc/self/mountinfo', (fd) => {
      polled.push(fd);
      if (failing) {
        failing = false;
        throw new KernelError('poll', constants.errno.ENOMEM);
      }
      return false;
    });
    expect(changed()).toBeUndefined();
    expect(changed()).toBe(false);
    expect(polled[1]).toBe(polled[0]);
  });

  it('a descriptor that is not open is an error, never "unchanged"', () => {
    expect(() => pollPriority(999_999)).toThrow(/EBADF/);
  });

  it.each([
    ['listmount', false],
    ['mountinfo fallback', true],
  ])(
    'a peer of the mount root made after a Create is seen by the next one (%s)',
    async (_name, fallback) => {
      const mounts = new SyscallMounts({ fallback });
      const root = dirIn(base, 'root');
      bindByPath(root, root);
      withFd(openDirectory(root), (fd) => mountSetattr(fd, { propagation: 'shared' }));
      const groupAt = (target: string) => mountsAtPath(target).at(-1)?.sharedGroup;
      const create = (name: string) =>
        mounts.ensureSharedMount(
          { kind: 'bind', directory: dirIn(base, `src/${name}`) },
          path.join(root, name),
          'rshared',
        );

      await create('v1');
      await create('v2');
      // Someone else binds the mount root here: a peer, and every new volume shows there too.
      const alias = dirIn(base, 'alias');
      bindByPath(root, alias);
      expect(groupAt(alias)).toBe(groupAt(root));
      await create('v3');
      expect(mountsAtPath(path.join(alias, 'v3'))).toHaveLength(1);
      // Its own group: a mount made in the volume does not show twice here.
      expect(groupAt(path.join(root, 'v3'))).toBeDefined();
      expect(groupAt(path.join(root, 'v3'))).not.toBe(groupAt(path.join(alias, 'v3')));
      tmpfsAt(dirIn(root, 'v3/sub'), 'sp-sub');
      expect(mountsAtPath(path.join(alias, 'v3/sub'))).toHaveLength(0);
    },
  );
});
