import { readFileSync } from 'node:fs';
import { parseJson, stringifyJson, type JsonObject } from '../../../src/runtime/json.js';
import { MOUNT_ROOT_MARKER } from '../../../src/mount-root-marker.js';
import { sharedpropSources } from '../../../src/runtime/sources.js';
import {
  rewriteSpec,
  specChanged,
  SpecError,
  withRshared,
  type SourcePredicate,
} from '../../../src/runtime/spec.js';

const PLUGIN_MOUNTS =
  '/var/lib/docker/plugins/c0ffee4d2b7a9e1f3c5d7b9a1e3f5c7d9b1a3e5f7c9d1b3a5e7f9c1d3b5a7e9f/propagated-mount';

/** The real predicate, over a file system where only the plugin's mount root has the marker. */
const sharedprop: SourcePredicate = sharedpropSources(
  [],
  (file) => file === `${PLUGIN_MOUNTS}/${MOUNT_ROOT_MARKER}`,
);
const nothing: SourcePredicate = () => false;

const load = (name: string) =>
  parseJson(readFileSync(new URL(`../../fixtures/oci/${name}`, import.meta.url), 'utf8'));

type Mount = { destination: string; source: string; options?: string[] };
const mounts = (spec: unknown) => (spec as { mounts: Mount[] }).mounts;
const linux = (spec: unknown) => (spec as { linux: Record<string, unknown> }).linux;
const plain = (spec: unknown) => JSON.parse(stringifyJson(spec as JsonObject)) as JsonObject;

describe('rewriting a Docker 20.10 spec with a sharedprop volume', () => {
  const original = load('docker-20.10-sharedprop-volume.json');
  const originalText = stringifyJson(original);
  const rewrite = rewriteSpec(original, sharedprop);

  it('makes the volume mount rshared in place of rprivate', () => {
    const volume = mounts(rewrite.spec).find((m) => m.destination === '/mnt');
    expect(volume?.options).toEqual(['rbind', 'rshared']);
    expect(rewrite.changed).toEqual([
      {
        destination: '/mnt',
        source: `${PLUGIN_MOUNTS}/myvol`,
        before: ['rbind', 'rprivate'],
        after: ['rbind', 'rshared'],
      },
    ]);
    expect(rewrite.matched).toBe(1);
  });

  it('sets linux.rootfsPropagation to shared when it is absent', () => {
    expect(linux(rewrite.spec).rootfsPropagation).toBe('shared');
    expect(rewrite.rootfsPropagation).toEqual({ before: undefined, after: 'shared' });
    expect(specChanged(rewrite)).toBe(true);
  });

  it('leaves every other mount and every other key as it was', () => {
    const before = plain(original);
    const after = plain(rewrite.spec);
    expect(mounts(after).filter((m) => m.destination !== '/mnt')).toEqual(
      mounts(before).filter((m) => m.destination !== '/mnt'),
    );
    expect(mounts(after).map((m) => m.destination)).toEqual(
      mounts(before).map((m) => m.destination),
    );
    const { rootfsPropagation, ...otherLinux } = linux(after);
    expect(rootfsPropagation).toBe('shared');
    expect(otherLinux).toEqual(linux(before));
    const withoutMountsAndLinux = (s: JsonObject) => ({ ...s, mounts: null, linux: null });
    expect(withoutMountsAndLinux(after)).toEqual(withoutMountsAndLinux(before));
  });

  it('does not modify its input', () => {
    expect(stringifyJson(original)).toBe(originalText);
  });

  it('is idempotent: a second pass changes nothing', () => {
    const again = rewriteSpec(rewrite.spec, sharedprop);
    expect(specChanged(again)).toBe(false);
    expect(again.matched).toBe(1);
    expect(stringifyJson(again.spec)).toBe(stringifyJson(rewrite.spec));
  });
});

describe('rewriting a spec with big numbers, a local volume and rootfsPropagation rprivate', () => {
  const original = load('docker-20.10-kolla-netns.json');
  const rewrite = rewriteSpec(original, sharedprop);
  const text = stringifyJson(rewrite.spec);

  it('changes the sharedprop mount only, not the local volume', () => {
    expect(rewrite.changed.map((c) => c.destination)).toEqual(['/run/netns']);
    const byDestination = new Map(mounts(rewrite.spec).map((m) => [m.destination, m]));
    expect(byDestination.get('/run/netns')?.options).toEqual(['rbind', 'rshared']);
    expect(byDestination.get('/var/lib/neutron')?.options).toEqual(['rbind', 'rprivate']);
    expect(byDestination.get('/etc/hosts')?.options).toEqual(['rbind', 'rprivate']);
  });

  it('replaces rootfsPropagation rprivate with shared', () => {
    expect(rewrite.rootfsPropagation).toEqual({ before: 'rprivate', after: 'shared' });
    expect(linux(rewrite.spec).rootfsPropagation).toBe('shared');
  });

  it('keeps uint64 limits and unknown keys exactly', () => {
    expect(text).toContain('"hard":18446744073709551615,"soft":18446744073709551615');
    expect(text).toContain('"limit":9223372036854771712');
    expect(text).toContain('"com.example.unknown":"kept"');
    expect(text).toContain('"intelRdt":{"closID":"guaranteed_group"}');
  });

  it('is idempotent', () => {
    const again = rewriteSpec(rewrite.spec, sharedprop);
    expect(specChanged(again)).toBe(false);
    expect(stringifyJson(again.spec)).toBe(text);
  });
});

describe('a spec without sharedprop mounts', () => {
  it.each(['docker-20.10-sharedprop-volume.json', 'docker-20.10-kolla-netns.json'])(
    '%s is returned as it is',
    (name) => {
      const original = load(name);
      const rewrite = rewriteSpec(original, nothing);
      expect(rewrite.spec).toBe(original);
      expect(rewrite).toMatchObject({ changed: [], matched: 0 });
      expect(specChanged(rewrite)).toBe(false);
    },
  );

  it('without mounts at all is returned as it is', () => {
    const spec = parseJson('{"ociVersion":"1.0.2","linux":{}}');
    expect(rewriteSpec(spec, () => true).spec).toBe(spec);
  });
});

describe('propagation options', () => {
  it.each([
    [
      ['rbind', 'rprivate'],
      ['rbind', 'rshared'],
    ],
    [
      ['rbind', 'private'],
      ['rbind', 'rshared'],
    ],
    [
      ['rbind', 'rslave', 'ro'],
      ['rbind', 'rshared', 'ro'],
    ],
    [
      ['slave', 'rbind'],
      ['rshared', 'rbind'],
    ],
    [
      ['rbind', 'shared'],
      ['rbind', 'rshared'],
    ],
    [['rbind'], ['rbind', 'rshared']],
    [[], ['rshared']],
    [
      ['rprivate', 'rbind', 'rslave'],
      ['rshared', 'rbind'],
    ],
    [
      ['rbind', 'rshared'],
      ['rbind', 'rshared'],
    ],
  ])('%j -> %j', (before, after) => {
    expect(withRshared(before)).toEqual(after);
  });

  it('adds rshared to a sharedprop mount without options and creates linux', () => {
    const spec = parseJson('{"mounts":[{"destination":"/v","source":"/m/v"}]}');
    const rewrite = rewriteSpec(spec, (s) => s === '/m/v');
    expect(plain(rewrite.spec)).toEqual({
      mounts: [{ destination: '/v', source: '/m/v', options: ['rshared'] }],
      linux: { rootfsPropagation: 'shared' },
    });
  });

  it.each(['shared', 'rshared'])('keeps rootfsPropagation %s', (value) => {
    const spec = parseJson(
      `{"mounts":[{"destination":"/v","source":"/m/v","options":["rbind","rprivate"]}],"linux":{"rootfsPropagation":"${value}"}}`,
    );
    const rewrite = rewriteSpec(spec, () => true);
    expect(rewrite.rootfsPropagation).toBeUndefined();
    expect(linux(rewrite.spec).rootfsPropagation).toBe(value);
    expect(rewrite.changed).toHaveLength(1);
  });

  it('still sets rootfsPropagation when the mount is already rshared', () => {
    const spec = parseJson(
      '{"mounts":[{"destination":"/v","source":"/m/v","options":["rbind","rshared"]}],"linux":{}}',
    );
    const rewrite = rewriteSpec(spec, () => true);
    expect(rewrite.changed).toEqual([]);
    expect(rewrite.rootfsPropagation).toEqual({ before: undefined, after: 'shared' });
    expect(specChanged(rewrite)).toBe(true);
  });
});

describe('specs that cannot be rewritten', () => {
  it.each([
    ['[]', /not a JSON object/],
    ['{"mounts":{}}', /"mounts" is not a list/],
    ['{"mounts":[1]}', /mounts\[0\] is not an object/],
    ['{"mounts":[{"source":"/m/v","options":"rbind"}]}', /mounts\[0\]\.options/],
    ['{"mounts":[{"source":"/m/v"}],"linux":[]}', /"linux" is not an object/],
    ['{"mounts":[{"source":"/m/v"}],"linux":{"rootfsPropagation":1}}', /rootfsPropagation/],
  ])('%s', (text, message) => {
    expect(() => rewriteSpec(parseJson(text), () => true)).toThrow(SpecError);
    expect(() => rewriteSpec(parseJson(text), () => true)).toThrow(message);
  });
});
