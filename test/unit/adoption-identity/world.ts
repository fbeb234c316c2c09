/**
 * What the adoption-identity tests share: the adopted-path kind over a KindContext of fakes (the
 * fake mount layer models bind aliases, replaced directories and symlinks as openat2 sees them),
 * with the host's directories in place, and the helpers its tests use.
 */
import { adoptedKind } from '../../../src/driver/kinds/adopted.js';
import type { RecordOf } from '../../../src/driver/kinds/kind.js';
import { VolumeError } from '../../../src/model/errors.js';
import { parseOptions, type PathOptions } from '../../../src/model/options.js';
import { kindContext, recordOf } from '../../support/kind-context.js';

export async function rejection(work: Promise<unknown>): Promise<VolumeError> {
  try {
    await work;
  } catch (error) {
    return error as VolumeError;
  }
  throw new Error('expected a rejection');
}

export const options = (dir: string) => parseOptions('a1', { path: dir }) as PathOptions;
export const recordAt = (name: string, opts: PathOptions) =>
  recordOf(name, opts) as RecordOf<'path'>;

export function world(over: Parameters<typeof kindContext>[0] = {}) {
  const w = kindContext(over);
  for (const dir of [
    '/srv/host',
    '/srv/host/sub',
    '/fake/data',
    '/fake/mounts',
    '/var/lib/docker',
  ]) {
    w.mounts.directories.add(dir);
  }
  w.mounts.directories.add('/proc');
  w.mounts.directories.add('/var');
  return { ...w, kind: adoptedKind(w.ctx) };
}
