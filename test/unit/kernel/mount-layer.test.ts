/**
 * The choice of mount layer at start: the system calls by default (listmount where the kernel
 * has it), the mountinfo fallback when asked, mount(8) when asked or when the system calls cannot
 * be made here, said once at warn with the reason. And the probe that decides it.
 */
import { readdirSync } from 'node:fs';
import { Writable } from 'node:stream';
import { createLogger } from '../../../src/log.js';
import type { Libc } from '../../../src/system/kernel/ffi.js';
import { SYS } from '../../../src/system/kernel/ffi.js';
import { AT_EMPTY_PATH } from '../../../src/system/kernel/constants.js';
import { probeSyscalls } from '../../../src/system/kernel/probe.js';
import {
  createMountLayer,
  MOUNT_LAYER_ENV,
  parseMountLayer,
} from '../../../src/system/mount-layer.js';
import { MountSystem } from '../../../src/system/mounts.js';
import { SyscallMounts } from '../../../src/system/syscall-mounts.js';
import { SharedpropDriver } from '../../../src/driver/sharedprop-driver.js';
import { FakeStore } from '../../support/driver-fakes.js';

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { log: createLogger({ level: 'debug', stream }), lines };
}

describe('parseMountLayer', () => {
  it('is auto when unset or empty, and each named layer as given', () => {
    expect(parseMountLayer(undefined)).toBe('auto');
    expect(parseMountLayer('')).toBe('auto');
    expect(parseMountLayer('auto')).toBe('auto');
    expect(parseMountLayer('mountinfo')).toBe('mountinfo');
    expect(parseMountLayer('mount8')).toBe('mount8');
  });

  it('refuses any other value, naming the choices and where they are set', () => {
    expect(() => parseMountLayer('Mountinfo')).toThrow(
      'mount layer "Mountinfo" is not one of auto, mountinfo, mount8 (--mount-layer, SHAREDPROP_MOUNT_LAYER)',
    );
    expect(MOUNT_LAYER_ENV).toBe('SHAREDPROP_MOUNT_LAYER');
  });
});

describe('createMountLayer', () => {
  it('auto: the system calls, reading the tree by ID on this kernel (6.8+), said at info', () => {
    const { log, lines } = capturingLogger();
    const mounts = createMountLayer('auto', log);
    expect(mounts).toBeInstanceOf(SyscallMounts);
    expect((mounts as SyscallMounts).tree.mode).toBe('listmount');
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'info',
        message: 'mount layer: system calls',
        mountLayer: 'auto',
        tree: 'listmount',
      }),
    ]);
  });

  it('auto ignores a SHAREDPROP_MOUNT_LAYER set behind its back: the setting given decides', () => {
    process.env.SHAREDPROP_MOUNT_LAYER = 'mountinfo';
    try {
      const mounts = createMountLayer('auto', capturingLogger().log) as SyscallMounts;
      expect(mounts.tree.mode).toBe('listmount');
    } finally {
      delete process.env.SHAREDPROP_MOUNT_LAYER;
    }
  });

  it('mountinfo: the system calls, reading mountinfo', () => {
    const { log, lines } = capturingLogger();
    const mounts = createMountLayer('mountinfo', log);
    expect(mounts).toBeInstanceOf(SyscallMounts);
    expect((mounts as SyscallMounts).tree.mode).toBe('mountinfo');
    expect(lines[0]).toEqual(expect.objectContaining({ level: 'info', tree: 'mountinfo' }));
  });

  it('mount8: mount(8) processes, said at warn, without probing', () => {
    const { log, lines } = capturingLogger();
    let probed = 0;
    expect(createMountLayer('mount8', log, () => probed++)).toBeInstanceOf(MountSystem);
    expect(probed).toBe(0);
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'warn',
        message: 'mount layer: mount(8) and umount(8) processes, as chosen',
        mountLayer: 'mount8',
      }),
    ]);
  });

  it.each(['auto', 'mountinfo'] as const)(
    '%s where the system calls cannot be made: mount(8), with the reason, once at warn',
    (setting) => {
      const { log, lines } = capturingLogger();
      const probe = () => {
        throw new Error("Cannot find module 'koffi'");
      };
      expect(createMountLayer(setting, log, probe)).toBeInstanceOf(MountSystem);
      expect(lines).toEqual([
        {
          level: 'warn',
          message:
            'mount layer: the system calls cannot be made here; mount(8) and umount(8) processes instead',
          mountLayer: setting,
          reason: "Cannot find module 'koffi'",
          timestamp: expect.any(String) as unknown,
        },
      ]);
    },
  );

  it('a probe that throws something other than an Error still gives its reason', () => {
    const { log, lines } = capturingLogger();
    const probe = () => {
      throw 'no libc';
    };
    expect(createMountLayer('auto', log, probe)).toBeInstanceOf(MountSystem);
    expect(lines[0]?.reason).toBe('no libc');
  });
});

describe('probeSyscalls', () => {
  it('passes on this kernel, with the real C library, changing nothing and closing what it opened', () => {
    const fds = readdirSync('/proc/self/fd').length;
    expect(() => probeSyscalls()).not.toThrow();
    expect(readdirSync('/proc/self/fd')).toHaveLength(fds);
  });

  /** A C library whose every call fails: with ENOSYS for `missing`, EBADF for the others. */
  function libcWithout(missing: number): Libc {
    let errno = 0;
    const fail = (nr: unknown) => {
      errno = nr === missing ? 38 : 9;
      return -1;
    };
    return {
      sysFdPathInt: fail,
      sysFdPathFdPathInt: fail,
      sysStrInt: fail,
      sysFdPathIntPtrInt: fail,
      errno: () => errno,
    } as unknown as Libc;
  }

  it.each([
    [SYS.open_tree, 'the kernel has no open_tree (Linux 5.2 or later)'],
    [SYS.move_mount, 'the kernel has no move_mount (Linux 5.2 or later)'],
    [SYS.fsopen, 'the kernel has no fsopen (Linux 5.2 or later)'],
    [SYS.mount_setattr, 'the kernel has no mount_setattr (Linux 5.12 or later)'],
  ])('a kernel without syscall %d is refused: %s', (nr, message) => {
    expect(() => probeSyscalls(libcWithout(nr))).toThrow(message);
  });

  it('calls that fail with another error than ENOSYS exist: accepted', () => {
    expect(() => probeSyscalls(libcWithout(-1))).not.toThrow();
  });

  it('makes each call with arguments every kernel refuses (no descriptor, no path): nothing changes', () => {
    const calls: unknown[][] = [];
    const refused = (...args: unknown[]) => {
      calls.push(args);
      return -1;
    };
    const libc = {
      sysFdPathInt: refused,
      sysFdPathFdPathInt: refused,
      sysStrInt: refused,
      sysFdPathIntPtrInt: refused,
      errno: () => 9,
    } as unknown as Libc;
    probeSyscalls(libc);
    expect(calls).toEqual([
      [SYS.open_tree, -1, '', AT_EMPTY_PATH],
      [SYS.move_mount, -1, '', -1, '', 0],
      [SYS.fsopen, '', -1],
      [SYS.mount_setattr, -1, '', 0, null, 0],
    ]);
  });

  it('a call that succeeds is accepted, whatever errno says', () => {
    const libc = {
      sysFdPathInt: () => 0,
      sysFdPathFdPathInt: () => 0,
      sysStrInt: () => 0,
      sysFdPathIntPtrInt: () => 0n,
      errno: () => 38,
    } as unknown as Libc;
    expect(() => probeSyscalls(libc)).not.toThrow();
  });
});

describe('the driver without a mount layer given', () => {
  const driverWith = (env: string | undefined) => {
    const { log, lines } = capturingLogger();
    if (env === undefined) delete process.env.SHAREDPROP_MOUNT_LAYER;
    else process.env.SHAREDPROP_MOUNT_LAYER = env;
    try {
      new SharedpropDriver({
        dataRoot: '/fake/data',
        mountRoot: '/fake/data/mounts',
        logger: log,
        store: new FakeStore(),
      });
    } finally {
      delete process.env.SHAREDPROP_MOUNT_LAYER;
    }
    return lines.map((line) => [line.message, line.tree ?? line.mountLayer]);
  };

  it('runs on the system calls, or on the layer SHAREDPROP_MOUNT_LAYER names', () => {
    expect(driverWith(undefined)).toEqual([['mount layer: system calls', 'listmount']]);
    expect(driverWith('mountinfo')).toEqual([['mount layer: system calls', 'mountinfo']]);
    expect(driverWith('mount8')).toEqual([
      ['mount layer: mount(8) and umount(8) processes, as chosen', 'mount8'],
    ]);
    expect(() => driverWith('fast')).toThrow('mount layer "fast" is not one of');
  });
});
