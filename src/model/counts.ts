/**
 * Per-ID mount counts. dockerd may Mount one ID twice (docker cp); each needs its own Unmount.
 * IDs arrive over the socket, so they live in a Map: `valueOf`, `constructor` or `__proto__`
 * count like any other string, never as a property of Object.prototype.
 */
export type MountCounts = ReadonlyMap<string, number>;

export const NO_MOUNTS: MountCounts = new Map();

export function addMount(counts: MountCounts, id: string): MountCounts {
  return new Map(counts).set(id, (counts.get(id) ?? 0) + 1);
}

/** Returns the new counts, and whether the ID was known at all. */
export function removeMount(
  counts: MountCounts,
  id: string,
): { counts: MountCounts; known: boolean } {
  const current = counts.get(id) ?? 0;
  if (current <= 0) return { counts, known: false };
  const next = new Map(counts);
  if (current === 1) next.delete(id);
  else next.set(id, current - 1);
  return { counts: next, known: true };
}

/** `counts` less `some`, ID by ID (an ID counted in `some` but not in `counts` is ignored). */
export function withoutMounts(counts: MountCounts, some: MountCounts): MountCounts {
  if (some.size === 0) return counts;
  const rest = new Map(counts);
  for (const [id, n] of some) {
    const left = (rest.get(id) ?? 0) - n;
    if (left > 0) rest.set(id, left);
    else rest.delete(id);
  }
  return rest;
}

export function totalMounts(counts: MountCounts): number {
  let total = 0;
  for (const n of counts.values()) total += n;
  return total;
}

/** As stored and shown: [id, count] pairs (an object would give `__proto__` a special meaning). */
export function countsToPairs(counts: MountCounts): [string, number][] {
  return [...counts];
}

/** For JSON answers: an object whose every key is an own property, `__proto__` included. */
export function countsToObject(counts: MountCounts): Record<string, number> {
  return Object.fromEntries(counts);
}
