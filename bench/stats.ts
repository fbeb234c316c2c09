/** Small statistics for noisy machines: medians, percentiles, min/max. */
export interface Summary {
  n: number;
  min: number;
  p50: number;
  p99: number;
  max: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    n: sorted.length,
    min: sorted[0] ?? NaN,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.at(-1) ?? NaN,
  };
}

export const ms = (value: number) => (Number.isFinite(value) ? value.toFixed(2) : '-');

export async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = process.hrtime.bigint();
  const value = await work();
  return { ms: Number(process.hrtime.bigint() - start) / 1e6, value };
}

/**
 * Runs A and B alternately `rounds` times. The ratio is paired: the median of each round's A/B,
 * so that a machine that drifts during the run (a daemon settling, another process waking)
 * weighs on both sides of every pair rather than on whichever side it happened to hit.
 */
export async function sideBySide(
  rounds: number,
  a: () => Promise<unknown>,
  b: () => Promise<unknown>,
): Promise<{ a: Summary; b: Summary; ratio: number }> {
  const as: number[] = [];
  const bs: number[] = [];
  for (let i = 0; i < rounds; i++) {
    // Alternate which goes first, so that neither always runs on a warmer machine.
    if (i % 2 === 0) {
      as.push((await timed(a)).ms);
      bs.push((await timed(b)).ms);
    } else {
      bs.push((await timed(b)).ms);
      as.push((await timed(a)).ms);
    }
  }
  return { a: summarize(as), b: summarize(bs), ratio: pairedRatio(as, bs) };
}

/** The median of as[i] / bs[i] (the mean of the middle two for an even count). */
export function pairedRatio(as: readonly number[], bs: readonly number[]): number {
  const ratios = as.map((a, i) => a / (bs[i] as number)).sort((x, y) => x - y);
  if (ratios.length === 0) return NaN;
  const mid = ratios.length >> 1;
  return ratios.length % 2 === 1
    ? (ratios[mid] as number)
    : ((ratios[mid - 1] as number) + (ratios[mid] as number)) / 2;
}
