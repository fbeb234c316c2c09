/**
 * Test-only crash points. With SHAREDPROP_CRASH_AT=<point> (say `remove:retired`), the driver
 * kills itself with SIGKILL when it reaches that point, so that tests can prove a restart after
 * a kill -9 at each step of Create and Remove leaves a consistent state. Unset, it costs nothing.
 */
const wanted = process.env.SHAREDPROP_CRASH_AT;

export type CrashPoint =
  | 'create:staged'
  | 'create:published'
  | 'create:mounted'
  | 'remove:retired'
  | 'remove:detached'
  | 'remove:deleted'
  /** A Mount is counted and its answer not yet written. */
  | 'mount:counted';

/** Each step of Create and of Remove. */
export const CRASH_POINTS: readonly CrashPoint[] = [
  'create:staged',
  'create:published',
  'create:mounted',
  'remove:retired',
  'remove:detached',
  'remove:deleted',
];

export function crashPoint(point: CrashPoint): void {
  if (wanted !== point) return;
  // The first process of a PID namespace (the managed plugin is pid 1 in its own) ignores a
  // SIGKILL it sends itself: there, exit at once without running anything else.
  if (process.pid === 1) process.exit(137);
  process.kill(process.pid, 'SIGKILL');
}
