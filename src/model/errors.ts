/** Errors the driver reports. The message is shown to the user verbatim by dockerd. */
export type VolumeErrorKind = 'invalid' | 'not_found' | 'conflict' | 'unavailable' | 'internal';

export class VolumeError extends Error {
  constructor(
    readonly kind: VolumeErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'VolumeError';
  }
}

export const invalid = (message: string) => new VolumeError('invalid', message);
export const notFound = (name: string) =>
  new VolumeError('not_found', `volume ${JSON.stringify(name)} does not exist`);
export const conflict = (message: string) => new VolumeError('conflict', message);
/** The driver cannot do this now (read-only or full data root); nothing was changed. */
export const unavailable = (message: string) => new VolumeError('unavailable', message);
