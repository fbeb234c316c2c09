import { pairedRatio, percentile, summarize } from '../../bench/stats.js';

describe('bench statistics', () => {
  it('pairs each round, so that a machine drifting over the run does not blur the ratio', () => {
    // The machine slows down round after round; A costs 5% more than B throughout, except in
    // round 2, where something else ran during B.
    const a = [105, 210, 315, 420, 525];
    const b = [100, 600, 300, 400, 500];
    expect(pairedRatio(a, b)).toBeCloseTo(1.05, 6);
    // The ratio of the medians compares rounds run at different speeds.
    expect(summarize(a).p50 / summarize(b).p50).toBeCloseTo(315 / 400, 6);
  });

  it('takes the mean of the middle two ratios for an even number of rounds', () => {
    expect(pairedRatio([1, 2, 3, 4], [1, 1, 1, 1])).toBe(2.5);
  });

  it('has no ratio without rounds', () => {
    expect(pairedRatio([], [])).toBeNaN();
  });

  it('summarises by nearest rank', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(summarize([3, 1, 2])).toEqual({ n: 3, min: 1, p50: 2, p99: 3, max: 3 });
  });
});
