/**
 * Grows the mount table of the mount namespace it runs in by `count` unrelated bind mounts under
 * `dir` (a directory bound onto each of its own subdirectories), as on a host with a big mount
 * table. The driver bench runs it inside the driver's private namespace (nsenter), where the
 * mounts vanish with the driver. Run: npx tsx bench/inflate-mount-table.ts <dir> <count>
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { mount } from '../src/system/kernel/calls.js';
import { MS_BIND } from '../src/system/kernel/constants.js';

const [dir, countText] = process.argv.slice(2);
const count = Number(countText);
if (!dir || !Number.isSafeInteger(count) || count < 0) {
  process.stderr.write('usage: inflate-mount-table.ts <dir> <count>\n');
  process.exit(2);
}
mkdirSync(dir, { recursive: true });
for (let i = 0; i < count; i++) {
  const at = path.join(dir, String(i));
  mkdirSync(at);
  mount(dir, at, null, MS_BIND);
}
