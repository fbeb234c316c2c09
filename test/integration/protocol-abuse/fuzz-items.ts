/**
 * The seeded protocol fuzz (seeded-fuzz.test.ts), what it sends: bodies that are not a protocol
 * object, paths and methods no endpoint takes, and the arbitrary of one generated item (a call,
 * a raw body, a bad route, or a drain of a volume) built from them and from fuzz-fields.ts.
 */
import fc from 'fast-check';
import {
  ALL_OPS,
  ENDPOINTS,
  EXTRAS,
  type Field,
  HOSTILE_NAMES,
  INVALID_IDS,
  INVALID_OPTS,
  ODD_IDS,
  type Op,
  text,
  type Transport,
  transportArb,
  VALID_IDS,
  VALID_NAMES,
  VALID_OPTS,
} from './fuzz-fields.js';
import { MiB } from './harness.js';

/** Bodies that are not a protocol object: each with how it must be answered. */
export type BodyClass =
  | 'empty' // no body at all
  | 'blank' // only whitespace
  | 'null' // JSON null: what dockerd sends to List and Capabilities
  | 'object' // a JSON object with no valid Name
  | 'other' // JSON, but not an object
  | 'malformed' // not JSON
  | 'bom' // a JSON object with a valid Name behind a byte-order mark
  | 'oversized'; // far beyond any request dockerd sends
export interface RawBody {
  label: string;
  make: () => string | Buffer;
  cls: BodyClass;
  /** Only for these endpoints (default: any). */
  only?: readonly Op[];
}
export const nest = (open: string, middle: string, close: string, depth: number) =>
  open.repeat(depth) + middle + close.repeat(depth);
const RAW_BODIES: RawBody[] = [
  { label: 'empty', make: () => '', cls: 'empty' },
  { label: 'blank', make: () => '  \n\t ', cls: 'blank' },
  { label: 'nbsp', make: () => '\u00a0', cls: 'blank' },
  { label: 'null', make: () => 'null', cls: 'null' },
  ...[
    '{}',
    '{"ID":"a","Opts":{}}',
    '{"__proto__":{"Name":"fz0","ID":"a","Opts":{}}}',
    '{"constructor":{"prototype":{"Name":"fz0"}}}',
    '{"name":"fz0","id":"a","opts":{}}',
    '{"NAME":"fz0"}',
    '{"Name":"\\ud800"}',
    '{"Name":"fz0\\u0000"}',
  ].map((json): RawBody => ({ label: json, make: () => json, cls: 'object' })),
  {
    label: 'invalid UTF-8 in Name',
    make: () => Buffer.from('{"Name":"fz0\xff","ID":"a"}', 'latin1'),
    cls: 'object',
  },
  {
    label: 'overlong UTF-8 slash in Name',
    make: () => Buffer.from('{"Name":"f\xc0\xafz"}', 'latin1'),
    cls: 'object',
  },
  ...['[]', '[{"Name":"fz0","ID":"a","Opts":{}}]', '"fz0"', '5', 'true', 'false', '-0', '""'].map(
    (json): RawBody => ({ label: json, make: () => json, cls: 'other' }),
  ),
  ...[
    '{',
    '}',
    '{"Name":',
    '{"Name":"fz0"',
    'not json',
    "{'Name':'fz0'}",
    '{"Name":"fz0",}',
    '{"Name":"fz0"}}',
    '{"Name":"fz0"} x',
    'NaN',
    'undefined',
    '{"Name":"fz0\u0000',
    '\u0000',
    '{"Name":"fz0"}\u0000',
  ].map((json): RawBody => ({ label: json, make: () => json, cls: 'malformed' })),
  {
    label: 'UTF-16 JSON',
    make: () => Buffer.from('{"Name":"fz0","ID":"a","Opts":{}}', 'utf16le'),
    cls: 'malformed',
  },
  {
    label: 'bytes ff fe',
    make: () => Buffer.from([0xff, 0xfe, 0x7b, 0x7d]),
    cls: 'malformed',
  },
  {
    label: 'byte-order mark',
    make: () => '\ufeff{"Name":"fz0"}',
    cls: 'bom',
    only: ['Get', 'Path', 'List'],
  },
  ...[1_000, 10_000, 100_000].map((depth): RawBody => ({
    label: `[ x ${depth}`,
    make: () => nest('[', '', ']', depth),
    cls: 'other',
  })),
  ...[10_000, 100_000].map((depth): RawBody => ({
    label: `{"a": x ${depth}`,
    make: () => nest('{"a":', '1', '}', depth),
    cls: 'object',
  })),
  {
    label: 'Name nested 100,000 deep',
    make: () => `{"Name":${nest('[', '', ']', 100_000)}}`,
    cls: 'object',
  },
  {
    label: 'Opts nested 100,000 deep',
    make: () => `{"Name":"fz0","Opts":${nest('{"a":', '"x"', '}', 100_000)}}`,
    cls: 'object',
    only: ['Create'],
  },
  { label: '[ x 100,000 unclosed', make: () => '['.repeat(100_000), cls: 'malformed' },
  {
    label: '8 MiB',
    make: () => JSON.stringify({ Name: 'fz0', ID: 'a', Opts: {}, Pad: 'x'.repeat(8 * MiB) }),
    cls: 'oversized',
  },
];

const BAD_PATHS = [
  '/',
  '/VolumeDriver',
  '/VolumeDriver.',
  '/VolumeDriver.Nope',
  '/VolumeDriver.create',
  '/volumedriver.get',
  '/Plugin.Activate/x',
  '/VolumeDriver.Get/',
  '//VolumeDriver.Get',
  '/VolumeDriver.Get/..',
  '/../VolumeDriver.Get',
  '/%2e%2e/VolumeDriver.Get',
  '/VolumeDriver.Get%00',
  '/__proto__',
  '/constructor',
  '/hasOwnProperty',
  '/toString',
  '/VolumeDriver.__proto__',
  '/VolumeDriver.constructor',
  `/${'x'.repeat(4000)}`,
];

export type Item =
  | {
      kind: 'call';
      op: Op;
      name: Field;
      id: Field;
      opts: Field;
      extra: string | null;
      transport: Transport;
    }
  | { kind: 'drain'; name: string }
  | { kind: 'raw'; op: Op; body: RawBody; transport: Transport }
  | { kind: 'route'; path: string; method: string };

export const weighted = <T>(pairs: [number, T][]) =>
  fc.oneof(...pairs.map(([weight, value]) => ({ weight, arbitrary: fc.constant(value) })));

const callArb: fc.Arbitrary<Item> = fc
  .record({
    op: weighted<Op>([
      [5, 'Create'],
      [3, 'Remove'],
      [18, 'Mount'],
      [16, 'Unmount'],
      [20, 'Get'],
      [6, 'Path'],
      [10, 'List'],
      [4, 'Capabilities'],
      [4, 'Activate'],
    ]),
    name: fc.oneof(
      { weight: 85, arbitrary: fc.constantFrom(...VALID_NAMES).map((n) => text(n, 'valid')) },
      { weight: 15, arbitrary: fc.constantFrom(...HOSTILE_NAMES) },
    ),
    id: fc.oneof(
      { weight: 88, arbitrary: fc.constantFrom(...VALID_IDS).map((id) => text(id, 'valid')) },
      { weight: 6, arbitrary: fc.constantFrom(...ODD_IDS) },
      { weight: 6, arbitrary: fc.constantFrom(...INVALID_IDS) },
    ),
    opts: fc.oneof(
      { weight: 85, arbitrary: fc.constantFrom(...VALID_OPTS) },
      { weight: 15, arbitrary: fc.constantFrom(...INVALID_OPTS) },
    ),
    extra: fc.option(fc.constantFrom(...EXTRAS), { freq: 8, nil: null }).map((e) => e ?? null),
    transport: transportArb,
  })
  .map((call) => ({ kind: 'call' as const, ...call }));

const rawArb: fc.Arbitrary<Item> = fc
  .record({
    op: fc.constantFrom(...ALL_OPS),
    body: fc.oneof(
      // Deep and huge bodies are rarer: they cost time, not insight, when repeated.
      {
        weight: 40,
        arbitrary: fc.constantFrom(...RAW_BODIES.filter((b) => !/ x |8 MiB|deep/.test(b.label))),
      },
      {
        weight: 3,
        arbitrary: fc.constantFrom(...RAW_BODIES.filter((b) => / x |deep/.test(b.label))),
      },
      { weight: 1, arbitrary: fc.constantFrom(...RAW_BODIES.filter((b) => b.cls === 'oversized')) },
      {
        weight: 10,
        arbitrary: fc
          .string({ maxLength: 60, unit: 'binary' })
          .filter((s) => {
            try {
              const parsed: unknown = JSON.parse(s);
              return typeof parsed !== 'object' || parsed === null || Array.isArray(parsed);
            } catch {
              return true;
            }
          })
          .map((s): RawBody => ({
            label: `random ${JSON.stringify(s)}`,
            make: () => s,
            cls: classify(s),
          })),
      },
    ),
    transport: transportArb,
  })
  .map(({ op, body, transport }) => ({
    kind: 'raw' as const,
    op: body.only && !body.only.includes(op) ? body.only[0]! : op,
    body,
    transport,
  }));

const routeArb: fc.Arbitrary<Item> = fc
  .oneof(
    fc.record({ path: fc.constantFrom(...BAD_PATHS), method: fc.constant('POST') }),
    fc.record({
      path: fc.constantFrom(...Object.values(ENDPOINTS)),
      method: fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'SEARCH'),
    }),
  )
  .map((r) => ({ kind: 'route' as const, ...r }));

const drainArb: fc.Arbitrary<Item> = fc
  .constantFrom(...VALID_NAMES)
  .map((name) => ({ kind: 'drain' as const, name }));

export const itemArb: fc.Arbitrary<Item> = fc.oneof(
  { weight: 76, arbitrary: callArb },
  { weight: 2, arbitrary: drainArb },
  { weight: 16, arbitrary: rawArb },
  { weight: 6, arbitrary: routeArb },
);

/** How the protocol must answer a body that is not a protocol object (the driver reads it so). */
function classify(body: string): BodyClass {
  if (body === '') return 'empty';
  if (body.trim() === '') return 'blank';
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed === null) return 'null';
    return typeof parsed === 'object' && !Array.isArray(parsed) ? 'object' : 'other';
  } catch {
    return 'malformed';
  }
}
