import { VolumeError } from '../../src/model/errors.js';
import { KernelError } from '../../src/system/kernel/ffi.js';
import { heldOrUnavailable } from '../../src/system/held-or-unavailable.js';

describe('heldOrUnavailable: adoption where the system calls cannot be made', () => {
  it('gives back what was held', () => {
    expect(heldOrUnavailable(() => 7)).toBe(7);
  });

  it('lets an ordinary failure of the call through as it is (ENOENT, ELOOP...)', () => {
    const missing = new KernelError('openat2', 2, '/srv/x');
    expect(() =>
      heldOrUnavailable(() => {
        throw missing;
      }),
    ).toThrow(missing);
  });

  it.each([
    ['koffi does not load', new Error("Cannot find module 'koffi'")],
    ['the kernel has no such call', new KernelError('openat2', 38)],
  ])('%s: a 503 that says what is needed, with the reason', (_what, cause) => {
    let caught: unknown;
    try {
      heldOrUnavailable(() => {
        throw cause;
      });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(VolumeError);
    expect((caught as VolumeError).kind).toBe('unavailable');
    expect((caught as VolumeError).message).toBe(
      `adopting a host directory needs the kernel's openat2 and statx, called through koffi, which cannot be used here (${cause.message}); run the driver where they can: Linux 5.12 or later, with \`node dist/cli.js serve\` or an x86_64 release`,
    );
  });
});
