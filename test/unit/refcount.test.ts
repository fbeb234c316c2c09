import { addMount, removeMount, totalMounts } from '../../src/driver/refcount.js';

describe('per-ID mount counts', () => {
  it('counts the same ID twice (docker cp) and needs two unmounts', () => {
    let counts = addMount({}, 'ctr');
    counts = addMount(counts, 'ctr');
    counts = addMount(counts, 'other');
    expect(counts).toEqual({ ctr: 2, other: 1 });
    expect(totalMounts(counts)).toBe(3);

    const first = removeMount(counts, 'ctr');
    expect(first).toEqual({ counts: { ctr: 1, other: 1 }, known: true });
    const second = removeMount(first.counts, 'ctr');
    expect(second.counts).toEqual({ other: 1 });
    expect(totalMounts(second.counts)).toBe(1);
  });

  it('an unknown ID changes nothing', () => {
    const counts = { a: 1 };
    expect(removeMount(counts, 'b')).toEqual({ counts, known: false });
  });

  it('never mutates its input', () => {
    const counts = Object.freeze({ a: 1 });
    expect(addMount(counts, 'a')).toEqual({ a: 2 });
    expect(removeMount(counts, 'a').counts).toEqual({});
    expect(counts).toEqual({ a: 1 });
  });
});
