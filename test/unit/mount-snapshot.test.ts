import { MountSnapshot } from '../../src/system/mount-snapshot.js';
import { hostPathOf, parseMountinfoLine, type MountEntry } from '../../src/system/mountinfo.js';

const line = (id: number) => parseMountinfoLine(`${id} 1 0:1 / /m/${id} rw - tmpfs t rw`);

/** A snapshot of at most 1,000 ms whose reads are counted (each read's entry has its number). */
function counting() {
  let reads = 0;
  let clock = 0;
  const snapshot = new MountSnapshot(
    { read: async (): Promise<MountEntry[]> => [line(++reads)] },
    1000,
    () => clock,
  );
  return { snapshot, reads: () => reads, at: (ms: number) => (clock = ms) };
}

describe('MountSnapshot', () => {
  it('reads once, serves from the snapshot while it is fresh, and reads afresh when it is stale', async () => {
    const { snapshot, reads, at } = counting();
    expect((await snapshot.get()).entries[0]?.id).toBe(1);
    at(400);
    expect((await snapshot.get()).entries[0]?.id).toBe(1);
    expect(reads()).toBe(1);
    at(600); // past half its age: served, and a read starts in the background
    expect((await snapshot.get()).entries[0]?.id).toBe(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(reads()).toBe(2);
    expect((await snapshot.get()).entries[0]?.id).toBe(2);
    at(1601);
    expect((await snapshot.get()).entries[0]?.id).toBe(3); // never older than maxAgeMs
    expect(reads()).toBe(3);
    snapshot.invalidate();
    expect((await snapshot.get()).entries[0]?.id).toBe(4);
  });

  it('is current up to maxAgeMs exactly, and starts a read in the background only past half of it', async () => {
    const { snapshot, reads, at } = counting();
    await snapshot.get();
    at(500); // half its age: served, no read
    expect((await snapshot.get()).entries[0]?.id).toBe(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(reads()).toBe(1);
    at(1000); // its full age: still served (and renewed behind it)
    expect((await snapshot.get()).entries[0]?.id).toBe(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(reads()).toBe(2);
  });

  it('after invalidate, never answers from a read that started before it', async () => {
    let reads = 0;
    let release: () => void = () => undefined;
    const snapshot = new MountSnapshot({
      read: async (): Promise<MountEntry[]> => {
        const n = ++reads;
        if (n === 1) await new Promise<void>((resolve) => (release = resolve));
        return [line(n)];
      },
    });
    const early = snapshot.get();
    snapshot.invalidate();
    const late = snapshot.get();
    release();
    expect((await early).entries[0]?.id).toBe(1);
    expect((await late).entries[0]?.id).toBe(2);
    expect((await snapshot.get()).entries[0]?.id).toBe(2);
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
  it('takes the recorded host path when the table agrees with it', () => {
    // The host's / is a subdirectory of its filesystem (btrfs `/@`, or a pivot_root'ed engine).
    const subvolume = [
      parseMountinfoLine('1 0 0:30 /@ / rw - btrfs /dev/sda2 rw'),
      parseMountinfoLine('2 1 0:30 /@/var/lib/sharedprop /data rw - btrfs /dev/sda2 rw'),
    ];
    expect(hostPathOf(subvolume, '/data')).toBe('/@/var/lib/sharedprop');
    expect(hostPathOf(subvolume, '/data', '/var/lib/sharedprop')).toBe('/var/lib/sharedprop');
    expect(hostPathOf(entries, '/data', '/var/lib/sharedprop')).toBe('/var/lib/sharedprop');
    // A whole filesystem mounted at /data says nothing against the record.
    expect(hostPathOf(entries, '/tmp', '/srv/disk')).toBe('/srv/disk');
    // A record the table contradicts (data.source changed by hand since) loses.
    expect(hostPathOf(entries, '/data', '/srv/elsewhere')).toBe('/var/lib/sharedprop');
  });
});
