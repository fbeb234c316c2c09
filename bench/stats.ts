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

/** Runs A and B alternately `rounds` times and returns both sample sets and the median ratio. */
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
  const sa = summarize(as);
  const sb = summarize(bs);
  return { a: sa, b: sb, ratio: sa.p50 / sb.p50 };
}
