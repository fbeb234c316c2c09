/** How a storage failure reaches the user: a 503 saying what went wrong, no host paths. */
import { storageError } from '../../src/driver/storage-error.js';
import { VolumeError } from '../../src/model/errors.js';

const errno = (code: string) =>
  Object.assign(new Error(`${code}: /var/lib/sharedprop/volumes/v1`), { code });

describe('storageError', () => {
  it.each([
    ['EROFS', 'volume "v1" not created: the data root is read-only'],
    ['ENOSPC', 'volume "v1" not created: no space left in the data root'],
    ['EDQUOT', 'volume "v1" not created: no space left in the data root'],
  ])('%s is unavailable, phrased without the path', (code, message) => {
    const phrased = storageError(errno(code), 'volume "v1" not created');
    expect(phrased).toBeInstanceOf(VolumeError);
    expect((phrased as VolumeError).kind).toBe('unavailable');
    expect((phrased as VolumeError).message).toBe(message);
  });

  it.each([
    // As Node reports them: EDQUOT has no name in its error map.
    [{ code: 'UNKNOWN', errno: -122 }, 'no space left in the data root'],
    [{ code: 'ENOSPC', errno: -28 }, 'no space left in the data root'],
    // As the kernel bindings report them (KernelError: a positive errno).
    [{ code: 'E122', errno: 122 }, 'no space left in the data root'],
    [{ code: 'EROFS', errno: 30 }, 'the data root is read-only'],
    [{ errno: -30 }, 'the data root is read-only'],
    [{ errno: 28 }, 'no space left in the data root'],
  ])('is told by errno number too: %j', (fields, said) => {
    const phrased = storageError(Object.assign(new Error('failed'), fields), 'volume "v1"');
    expect((phrased as VolumeError).message).toBe(`volume "v1": ${said}`);
  });

  it('passes through what the driver phrased already and any other failure', () => {
    const phrased = new VolumeError('conflict', 'volume "v1" is in use');
    expect(storageError(phrased, 'volume "v1" not removed')).toBe(phrased);
    const eio = errno('EIO');
    expect(storageError(eio, 'volume "v1" not removed')).toBe(eio);
    expect(storageError('not an error', 'x')).toBe('not an error');
  });

  it('a thrown undefined or null passes through as it was', () => {
    expect(storageError(undefined, 'x')).toBeUndefined();
    expect(storageError(null, 'x')).toBeNull();
  });
});
