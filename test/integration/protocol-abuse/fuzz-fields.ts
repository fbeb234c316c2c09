/**
 * The seeded protocol fuzz (seeded-fuzz.test.ts), what it sends: the endpoints, and the values
 * of each field of a request (names, mount IDs, options, extra keys) and of its transport (its
 * Content-Type, chunked or not), each with whether the protocol must accept it. The hostile
 * names are also sent one by one to every endpoint by hostile-input.test.ts.
 */
import fc from 'fast-check';

export type Op =
  'Create' | 'Remove' | 'Mount' | 'Unmount' | 'Get' | 'Path' | 'List' | 'Capabilities' | 'Activate';

export const ENDPOINTS: Record<Op, string> = {
  Create: '/VolumeDriver.Create',
  Remove: '/VolumeDriver.Remove',
  Mount: '/VolumeDriver.Mount',
  Unmount: '/VolumeDriver.Unmount',
  Get: '/VolumeDriver.Get',
  Path: '/VolumeDriver.Path',
  List: '/VolumeDriver.List',
  Capabilities: '/VolumeDriver.Capabilities',
  Activate: '/Plugin.Activate',
};
export const ALL_OPS = Object.keys(ENDPOINTS) as Op[];
/** Endpoints that take a Name; the others ignore the body. */
export const NAMED: ReadonlySet<Op> = new Set([
  'Create',
  'Remove',
  'Mount',
  'Unmount',
  'Get',
  'Path',
]);
/** Endpoints that may change state: sent one at a time, so that the model knows the order. */
export const CHANGES: ReadonlySet<Op> = new Set(['Create', 'Remove', 'Mount', 'Unmount']);

/**
 * One field of a request body: `json` is its raw JSON text (undefined: the key is absent), so
 * that an own `__proto__` key can be sent (JSON.stringify of an object literal drops it).
 * `maybe`: nothing promises whether it is accepted; then 200 (as the model says) and a 4xx that
 * changes nothing are both right.
 */
export type Validity = 'valid' | 'invalid' | 'maybe';
export interface Field {
  json: string | undefined;
  validity: Validity;
  value?: string;
  /** Create options: equal canon, equal options (after defaults). */
  canon?: string;
}

export const text = (value: string, validity: Validity): Field => ({
  json: JSON.stringify(value),
  validity,
  value,
});
const raw = (json: string | undefined, validity: Validity, canon?: string): Field => ({
  json,
  validity,
  canon,
});

/** Valid names, some named like Object.prototype members, one of Docker's maximum length. */
export const VALID_NAMES = ['fz0', 'fz1', 'constructor', 'valueOf', 'a..', 'n'.repeat(255)];
export const HOSTILE_NAMES: Field[] = [
  ...[
    '..',
    '.',
    'a/b',
    '../../etc',
    '/abs',
    'fz0/../fz1',
    '__proto__',
    '_x',
    '-rf',
    '',
    'x',
    'sp ace',
    'fz0 ',
    ' fz0',
    'fz0\n',
    'nul\u0000x',
    'fz0\u0000',
    'é',
    'éé',
    'fz0\u200b',
    'ＦＺ０',
    '😀x',
    '\ud800x',
    'x'.repeat(256),
    'x'.repeat(300),
    'C:\\x',
    '$(reboot)',
    '`id`x',
    'fz*',
    '%2e%2e',
  ].map((name) => text(name, 'invalid')),
  ...['5', '0', '-1', '1e400', 'true', 'null', '[]', '["fz0"]', '{}', '{"Name":"fz0"}'].map(
    (json) => raw(json, 'invalid'),
  ),
  raw(undefined, 'invalid'),
];

export const HEX = (seed: string) => seed.repeat(64).slice(0, 64);
export const VALID_IDS = [
  'a',
  'b',
  'valueOf',
  'constructor',
  '__proto__',
  'toString',
  'hasOwnProperty',
  'ïd-ü',
  HEX('3f9a'),
  HEX('c01d'),
  'L'.repeat(300),
];
export const ODD_IDS: Field[] = ['', 'a\nb', '\u0000', 'x'.repeat(513), '\u007f', 'tab\there'].map(
  (id) => text(id, 'maybe'),
);
export const INVALID_IDS: Field[] = [
  ...['5', 'null', 'true', '[]', '{}', '["a"]'].map((json) => raw(json, 'invalid')),
  raw(undefined, 'invalid'),
];

export const VALID_OPTS: Field[] = [
  raw('null', 'valid', 'default'),
  raw('{}', 'valid', 'default'),
  raw('{"propagation":"rshared"}', 'valid', 'default'),
  raw('{"propagation":"shared"}', 'valid', 'shared'),
  raw('{"mode":"0750"}', 'valid', 'mode=0750'),
  raw('{"mode":"750"}', 'valid', 'mode=0750'),
  raw('{"uid":"1234","gid":"4321"}', 'valid', 'uid=1234 gid=4321'),
  // No Opts at all: dockerd sends null, but the protocol makes Opts no more required than null.
  raw(undefined, 'valid', 'default'),
];
export const INVALID_OPTS: Field[] = [
  '{"size":"1g"}',
  '{"__proto__":"1"}',
  '{"__proto__":{"x":"y"}}',
  '{"__proto__":{"mode":"0700"}}',
  '{"mode":"0750","__proto__":"1"}',
  '{"constructor":"1"}',
  '{"toString":"x"}',
  '{"hasOwnProperty":"x"}',
  '{"":"x"}',
  '{"mode":"rwx"}',
  '{"mode":"99"}',
  '{"mode":"99999"}',
  '{"mode":null}',
  '{"uid":"-1"}',
  '{"uid":"1e3"}',
  '{"uid":"4294967296"}',
  '{"uid":1234}',
  '{"propagation":"private"}',
  '{"propagation":"RSHARED"}',
  '[]',
  '["uid","1"]',
  '"uid=1"',
  '5',
  'true',
].map((json) => raw(json, 'invalid'));

/** Extra top-level keys: ignored by the protocol; an own `__proto__` must not leak into Name. */
export const EXTRAS = [
  '"Extra":1',
  '"__proto__":{"Name":"fz1","ID":"zz","Opts":{"uid":"7"}}',
  '"constructor":{"prototype":{"Name":"fz1"}}',
  '"name":"fz1"',
  '"Volume":{"Name":"fz1"}',
];

export interface Transport {
  contentType: string | null;
  chunked: boolean;
  validity: Validity;
}
export const CONTENT_TYPES: [string | null, Validity][] = [
  ['application/vnd.docker.plugins.v1.2+json', 'valid'],
  ['application/vnd.docker.plugins.v1.2+json', 'valid'],
  ['application/vnd.docker.plugins.v1.2+json', 'valid'],
  ['application/vnd.docker.plugins.v1.1+json; charset=utf-8', 'valid'],
  ['application/json', 'valid'],
  [null, 'valid'],
  ['text/plain', 'maybe'],
  ['application/x-www-form-urlencoded', 'maybe'],
];
export const transportArb: fc.Arbitrary<Transport> = fc
  .record({
    type: fc.constantFrom(...CONTENT_TYPES),
    chunked: fc.boolean().chain((b) => (b ? fc.boolean() : fc.constant(false))),
  })
  .map(({ type: [contentType, validity], chunked }) => ({ contentType, validity, chunked }));
