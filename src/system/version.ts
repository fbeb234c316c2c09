/**
 * The version of this build of sharedprop. A standalone executable (`make release`) has it
 * compiled in (Bun's --define of SHAREDPROP_BUILD_VERSION); from the sources or the plugin's
 * rootfs it is package.json's, which `make release` stamps into the plugin.
 */
import { readFileSync } from 'node:fs';

declare const SHAREDPROP_BUILD_VERSION: string | undefined;

function packageVersion(): string {
  try {
    const pkg = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export const VERSION: string =
  typeof SHAREDPROP_BUILD_VERSION === 'string' ? SHAREDPROP_BUILD_VERSION : packageVersion();

/** True in a standalone executable (`make release`), which carries no package.json. */
export const IS_STANDALONE = typeof SHAREDPROP_BUILD_VERSION === 'string';

/** The line `sharedprop-runtime --version` prints before runc's own (dockerd reads runc's). */
export const RUNTIME_VERSION_PREFIX = 'sharedprop-runtime version ';

/** The runtime's version from its `--version` output, when it is a sharedprop runtime. */
export function runtimeVersionOf(output: string): string | undefined {
  for (const line of output.split('\n')) {
    if (line.startsWith(RUNTIME_VERSION_PREFIX)) {
      return line.slice(RUNTIME_VERSION_PREFIX.length).trim() || undefined;
    }
  }
  return undefined;
}
