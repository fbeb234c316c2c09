import { MountSnapshot } from '../../src/system/mount-snapshot.js';
import { parseMountinfoLine, type MountEntry } from '../../src/system/mountinfo.js';
import { hostPathOf } from '../../src/driver/sharedprop-driver.js';

const line = (id: number) => parseMountinfoLine(`${id} 1 0:1 / /m/${id} rw - tmpfs t rw`);

describe('MountSnapshot', () => {
  it('reads once, serves from the snapshot, and refreshes in the background when stale', async () => {
    let reads = 0;
    let clock = 0;
    const snapshot = new MountSnapshot(
      { read: async (): Promise<MountEntry[]> => [line(++reads)] },
      1000,
      () => clock,
    );
    expect((await snapshot.get()).entries[0]?.id).toBe(1);
    clock = 500;
    expect((await snapshot.get()).entries[0]?.id).toBe(1);
    expect(reads).toBe(1);
    clock = 1501;
    expect((await snapshot.get()).entries[0]?.id).toBe(1); // stale answer, refresh started
    await new Promise((resolve) => setImmediate(resolve));
    expect((await snapshot.get()).entries[0]?.id).toBe(2);
    snapshot.invalidate();
    expect((await snapshot.get()).entries[0]?.id).toBe(3);
  });

  it('shares one read between concurrent callers', async () => {
    let reads = 0;
    const snapshot = new MountSnapshot({ read: async () => [line(++reads)] });
    await Promise.all([snapshot.get(), snapshot.get(), snapshot.get()]);
    expect(reads).toBe(1);
  });
});

describe('hostPathOf', () => {
  const entries = [
    parseMountinfoLine('1 0 8:1 / / rw - ext4 /dev/sda1 rw'),
    parseMountinfoLine('2 1 8:1 /var/lib/sharedprop /data rw - ext4 /dev/sda1 rw'),
    parseMountinfoLine('3 1 0:5 / /tmp rw - tmpfs tmpfs rw'),
  ];
  it('maps a path under a bind of a host directory back to the host', () => {
    expect(hostPathOf(entries, '/data')).toBe('/var/lib/sharedprop');
    expect(hostPathOf(entries, '/data/volumes/v')).toBe('/var/lib/sharedprop/volumes/v');
  });
  it('keeps a path under a whole filesystem as it is', () => {
    expect(hostPathOf(entries, '/tmp/x')).toBe('/tmp/x');
    expect(hostPathOf(entries, '/srv/x')).toBe('/srv/x');
  });
});
