/** Plain path comparisons (no I/O), shared by the model, the mount layer and the driver. */

/** True when `p` is `dir` itself or lies beneath it (both normalised absolute paths). */
export function isWithin(p: string, dir: string): boolean {
  if (dir === '/') return p.startsWith('/');
  return p === dir || p.startsWith(`${dir}/`);
}
