/** Per-ID mount counts. dockerd may Mount one ID twice (docker cp); each needs its own Unmount. */
export type MountCounts = Readonly<Record<string, number>>;

export function addMount(counts: MountCounts, id: string): MountCounts {
  return { ...counts, [id]: (counts[id] ?? 0) + 1 };
}

/** Returns the new counts, and whether the ID was known at all. */
export function removeMount(
  counts: MountCounts,
  id: string,
): { counts: MountCounts; known: boolean } {
  const current = counts[id] ?? 0;
  if (current <= 0) return { counts, known: false };
  const next: Record<string, number> = { ...counts };
  if (current === 1) delete next[id];
  else next[id] = current - 1;
  return { counts: next, known: true };
}

export function totalMounts(counts: MountCounts): number {
  return Object.values(counts).reduce((sum, n) => sum + n, 0);
}
