import { readPeers, subpathSources, SUBPATH_SOURCE } from '../../../src/runtime/subpath.js';

/** Mountinfo of a host with one sharedprop volume `v` (a managed plugin's layout). */
const PM = '/var/lib/docker/plugins/abc/propagated-mount';
const line = (id: number, mountPoint: string, optional: string) =>
  `${id} 1 8:1 /x ${mountPoint} rw,relatime ${optional} - ext4 /dev/sda1 rw`;
const MOUNTINFO = [
  line(20, '/', 'shared:1'),
  line(30, PM, 'shared:5'),
  line(31, `${PM}/v`, 'shared:24'),
  line(32, '/var/lib/docker/tmp/safe-mount123', 'shared:24'), // a subpath of v
  line(33, '/var/lib/docker/tmp/safe-mount456', 'shared:9'), // a subpath of another volume
  line(34, '/var/lib/docker/tmp/safe-mount789', ''), // of a private mount
  line(35, '/srv/with\\040space/safe-mount1', 'shared:24'),
  'garbage',
  '',
].join('\n');

const isVolume = (p: string) => p.startsWith(`${PM}/`);

describe('subpath mounts', () => {
  it('recognises dockerd temporary bind names only', () => {
    expect(SUBPATH_SOURCE.test('/var/lib/docker/tmp/safe-mount1932148229')).toBe(true);
    expect(SUBPATH_SOURCE.test('/var/lib/docker/tmp/safe-mount')).toBe(true);
    expect(SUBPATH_SOURCE.test('/var/lib/docker/tmp/safe-mount1/x')).toBe(false);
    expect(SUBPATH_SOURCE.test('/data/not-safe-mount1')).toBe(false);
  });

  it('reads mount points (unescaped) and shared peer groups, skipping what it cannot read', () => {
    const peers = readPeers(MOUNTINFO);
    expect(peers).toHaveLength(7);
    expect(peers[2]).toEqual({ mountPoint: `${PM}/v`, sharedGroup: 24 });
    expect(peers[5]).toEqual({ mountPoint: '/var/lib/docker/tmp/safe-mount789' });
    expect(peers[6]?.mountPoint).toBe('/srv/with space/safe-mount1');
  });

  it("accepts a temporary bind in a sharedprop volume's peer group, and nothing else", () => {
    let reads = 0;
    const accepts = subpathSources(() => {
      reads++;
      return MOUNTINFO;
    }, isVolume);
    expect(accepts(`${PM}/v`)).toBe(false); // not a subpath bind (the marker rule's business)
    expect(reads).toBe(0); // only a safe-mount name makes it read the table
    expect(accepts('/var/lib/docker/tmp/safe-mount123')).toBe(true);
    expect(accepts('/srv/with space/safe-mount1')).toBe(true);
    expect(accepts('/var/lib/docker/tmp/safe-mount456')).toBe(false);
    expect(accepts('/var/lib/docker/tmp/safe-mount789')).toBe(false);
    expect(accepts('/var/lib/docker/tmp/safe-mount000')).toBe(false); // not mounted
    expect(reads).toBe(1);
  });
});
