import { VolumeInfoCache } from '../../src/driver/info-cache.js';
import type { VolumeRecord } from '../../src/model/record.js';
import type { MountEntry } from '../../src/system/mountinfo.js';

const record = (name: string): VolumeRecord => ({
  name,
  createdAt: '2026-01-01T00:00:00Z',
  options: { kind: 'directory', propagation: 'rshared' },
  mounts: new Map(),
});
const NONE: readonly MountEntry[] = [];

describe('VolumeInfoCache', () => {
  it('hands out the same info while record, mounts and the saving of counts are the very same', () => {
    const cache = new VolumeInfoCache();
    const v1 = record('v1');
    let built = 0;
    const build = () => ({ name: 'v1', mountpoint: '/m/v1', createdAt: String(++built) });
    const first = cache.get({ record: v1, mounts: NONE, countsSaved: true }, build);
    expect(cache.get({ record: v1, mounts: NONE, countsSaved: true }, build)).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(built).toBe(1);

    // Each source that changes builds it again, one at a time: a new record (equal content), new
    // mounts (equal content), a failed save of the counts, a view cut off from its group.
    const r2 = { ...v1 };
    const mounts: MountEntry[] = [];
    const changes = [
      { record: r2, mounts: NONE, countsSaved: true },
      { record: r2, mounts, countsSaved: true },
      { record: r2, mounts, countsSaved: false },
      { record: r2, mounts, countsSaved: false, joined: false },
    ];
    for (const sources of changes) {
      const before = built;
      const info = cache.get(sources, build);
      expect(info.createdAt).toBe(String(before + 1));
      expect(cache.get({ ...sources }, build)).toBe(info);
    }
  });

  it('keeps at most its capacity, dropping the least recently built, and forgets a volume or all', () => {
    const cache = new VolumeInfoCache(2);
    const records = ['a', 'b', 'c'].map(record);
    let built = 0;
    const ask = (r: VolumeRecord) =>
      cache.get({ record: r, mounts: NONE, countsSaved: true }, () => ({
        name: r.name,
        mountpoint: `/m/${r.name}`,
        createdAt: String(++built),
      }));
    const [a, b, c] = records as [VolumeRecord, VolumeRecord, VolumeRecord];
    const infoA = ask(a);
    ask(b);
    ask(c); // drops a
    expect(built).toBe(3);
    expect(ask(c).createdAt).toBe('3');
    expect(ask(a)).not.toBe(infoA); // built again, drops b
    expect(built).toBe(4);
    expect(ask(c).createdAt).toBe('3');
    cache.forget('c');
    expect(ask(c).createdAt).toBe('5');
    cache.clear();
    expect(ask(c).createdAt).toBe('6');
  });
});
