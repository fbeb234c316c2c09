/** The kinds of volume, found by `options.kind`: the one place that maps a kind to its code. */
import type { VolumeKindName, VolumeOptions } from '../../model/options.js';
import { adoptedKind } from './adopted.js';
import { directoryKind } from './directory.js';
import type { KindContext, VolumeKind } from './kind.js';
import { tmpfsKind } from './tmpfs.js';

export type { KindContext, VolumeKind } from './kind.js';

export class VolumeKinds {
  private readonly byName: { [K in VolumeKindName]: VolumeKind<K> };

  constructor(ctx: KindContext) {
    this.byName = { directory: directoryKind(ctx), tmpfs: tmpfsKind(ctx), path: adoptedKind(ctx) };
  }

  /**
   * The kind of volume these options make. Its methods take options (and records) of that
   * kind: the union is narrowed here, once, by the discriminant.
   */
  of(options: VolumeOptions): VolumeKind {
    return this.byName[options.kind] as unknown as VolumeKind;
  }
}
