/**
 * Which Docker engine the end-to-end tier runs on. By default it is the host's (Debian 12's
 * docker.io 20.10); `make test-e2e-engines` runs the same tier again inside a Debian trixie and
 * sid root (test/engines), with SHAREDPROP_E2E_ENGINE naming the suite. Every test's title
 * starts with the engine, so a failure says where it happened.
 */
export const ENGINE = process.env.SHAREDPROP_E2E_ENGINE ?? 'bookworm';

/** The engines the matrix knows, and what each is known to bring. */
const KNOWN = {
  bookworm: { composeV2: false, newerThan25: false },
  trixie: { composeV2: true, newerThan25: true },
  sid: { composeV2: true, newerThan25: true },
} as const;

function traits(): (typeof KNOWN)[keyof typeof KNOWN] {
  const known = (KNOWN as Record<string, (typeof KNOWN)[keyof typeof KNOWN]>)[ENGINE];
  if (!known)
    throw new Error(`unknown SHAREDPROP_E2E_ENGINE '${ENGINE}' (${Object.keys(KNOWN).join(', ')})`);
  return known;
}

/** `[engine] title`: the name of a top-level describe block. */
export const onEngine = (title: string): string => `[${ENGINE}] ${title}`;

/** compose v2 (`docker compose` and `docker-compose` 2.x) comes with trixie and sid. */
export const hasComposeV2 = (): boolean => traits().composeV2;

/** dockerd 25 and later: `runtime features`, `rro`, subpath volume mounts (API 1.45). */
export const isEngine25OrLater = (): boolean => traits().newerThan25;

/**
 * Arguments for make that keep it from building: inside an engine root the build is the host's
 * (the root has no npm and no compiler), made before the root was entered.
 */
export const MAKE_NO_REBUILD: readonly string[] =
  process.env.SHAREDPROP_E2E_PREBUILT === '1'
    ? ['-o', 'build', '-o', 'plugin', '-o', 'runtime', '-o', 'node_modules/.package-lock.json']
    : [];
