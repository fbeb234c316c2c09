import {
  addMount,
  countsToObject,
  NO_MOUNTS,
  removeMount,
  totalMounts,
  withoutMounts,
} from '../../src/model/counts.js';

describe('per-ID mount counts', () => {
  it('counts the same ID twice (docker cp) and needs two unmounts', () => {
    let counts = addMount(NO_MOUNTS, 'ctr');
    counts = addMount(counts, 'ctr');
    counts = addMount(counts, 'other');
    expect(countsToObject(counts)).toEqual({ ctr: 2, other: 1 });
    expect(totalMounts(counts)).toBe(3);

    const first = removeMount(counts, 'ctr');
    expect(first.known).toBe(true);
    expect(countsToObject(first.counts)).toEqual({ ctr: 1, other: 1 });
    const second = removeMount(first.counts, 'ctr');
    expect(countsToObject(second.counts)).toEqual({ other: 1 });
    expect(totalMounts(second.counts)).toBe(1);
  });

  it('an unknown ID changes nothing', () => {
    const counts = new Map([['a', 1]]);
    expect(removeMount(counts, 'b')).toEqual({ counts, known: false });
  });

  it('never mutates its input', () => {
    const counts = new Map([['a', 1]]);
    expect(countsToObject(addMount(counts, 'a'))).toEqual({ a: 2 });
    expect(removeMount(counts, 'a').counts.size).toBe(0);
    expect(countsToObject(counts)).toEqual({ a: 1 });
  });

  it.each(['valueOf', 'constructor', 'toString', '__proto__', 'hasOwnProperty'])(
    'an ID named %s counts like any other',
    (id) => {
      const counts = addMount(addMount(NO_MOUNTS, 'real'), id);
      expect(totalMounts(counts)).toBe(2);
      expect(removeMount(NO_MOUNTS, id).known).toBe(false);
      const shown = countsToObject(counts);
      expect(Object.keys(shown)).toEqual(['real', id]);
      expect(JSON.parse(JSON.stringify(shown))).toEqual(JSON.parse(`{"real":1,"${id}":1}`));
      expect(totalMounts(removeMount(counts, id).counts)).toBe(1);
    },
  );
});

describe('withoutMounts', () => {
  it('takes counts away ID by ID, never below zero, and keeps the rest', () => {
    const all = new Map([
      ['a', 2],
      ['b', 1],
      ['__proto__', 1],
    ]);
    const some = new Map([
      ['a', 1],
      ['b', 3],
      ['gone', 1],
    ]);
    expect([...withoutMounts(all, some)]).toEqual([
      ['a', 1],
      ['__proto__', 1],
    ]);
    expect(withoutMounts(all, NO_MOUNTS)).toBe(all);
  });
});
