/**
 * The doctor's checks of volumes and containers on recorded mount tables: submounts, leaks, the
 * mount point's propagation, and a mount point seen twice.
 */
import {
  checkContainerMounts,
  checkVolume,
  classifySubmounts,
} from '../../../src/doctor/volume-checks.js';
import { parseMountinfo } from '../../../src/system/mountinfo.js';
import { containerLayers, host, PROP, runningWith } from './host-table.js';

describe('volume checks on a recorded host mount table', () => {
  const running = runningWith(['0:62']);

  it('lists submounts and marks only a dead container root as leaked', () => {
    const subs = classifySubmounts(host, `${PROP}/netns`, running);
    expect(subs.map((s) => [s.path.slice(PROP.length), s.fsType, s.leaked])).toEqual([
      ['/netns/etc', 'overlay', true],
      ['/netns/srv', 'overlay', false],
      ['/netns/qrouter-1', 'nsfs', false],
    ]);
  });

  it('a shared mount point with a leak is a warning that names it', () => {
    const result = checkVolume('netns', `${PROP}/netns`, host, running);
    expect(result.verdict).toBe('warn');
    expect(result.detail).toMatch(/3 submount\(s\), 1 leaked: .*netns\/etc/);
    expect(result.fix).toMatch(/sharedprop prune/);
  });

  it('no leak when the container is running', () => {
    expect(checkVolume('netns', `${PROP}/netns`, host, runningWith(['0:61', '0:62'])).verdict).toBe(
      'ok',
    );
  });

  it('a slave mount point fails', () => {
    const result = checkVolume('plain', `${PROP}/plain`, host, running);
    expect(result).toMatchObject({ verdict: 'fail' });
    expect(result.detail).toMatch(/is slave, not shared/);
  });

  it('a missing mount point fails', () => {
    expect(checkVolume('gone', `${PROP}/gone`, host, running).detail).toMatch(/is not mounted/);
  });

  it('mounts stacked from different peer groups fail; one peer group shown twice is fine', () => {
    expect(checkVolume('dup', `${PROP}/dup`, host, running).detail).toMatch(/2 mounts are stacked/);
    expect(checkVolume('twice', `${PROP}/twice`, host, running).verdict).toBe('ok');
  });
});

describe('leaks with a directory storage driver (vfs)', () => {
  const table = parseMountinfo(`
91 22 8:1 /var/lib/sharedprop/volumes/v/_data ${PROP}/v rw shared:301 - ext4 /dev/sda1 rw
92 91 8:1 /var/lib/docker/vfs/dir/dead/etc ${PROP}/v/etc rw shared:301 - ext4 /dev/sda1 rw
93 91 8:1 /var/lib/docker/vfs/dir/alive/etc ${PROP}/v/etc2 rw shared:301 - ext4 /dev/sda1 rw
94 91 8:1 /var/lib/docker/volumes/local1/_data ${PROP}/v/local rw shared:301 - ext4 /dev/sda1 rw
95 91 8:1 /srv/host-dir ${PROP}/v/host rw shared:301 - ext4 /dev/sda1 rw
96 91 8:17 /var/lib/docker/vfs/dir/dead/etc ${PROP}/v/other-disk rw shared:301 - ext4 /dev/sdb1 rw
97 91 0:70 / ${PROP}/v/ops rw shared:301 - overlay overlay rw,lowerdir=/srv/l,upperdir=/srv/u,workdir=/srv/w
98 91 0:71 / ${PROP}/v/ro rw shared:301 - overlay overlay ro,lowerdir=/var/lib/docker/overlay2/l/A
`);
  it("judges only binds from a dead container layer as leaked, never an operator's overlay", () => {
    const subs = classifySubmounts(
      table,
      `${PROP}/v`,
      runningWith([], ['/var/lib/docker/vfs/dir/alive']),
    );
    expect(subs.map((s) => [s.path.slice(PROP.length), s.leaked])).toEqual([
      ['/v/etc', true],
      ['/v/etc2', false],
      ['/v/local', false],
      ['/v/host', false],
      ['/v/other-disk', false],
      ['/v/ops', false],
      ['/v/ro', false],
    ]);
  });
});

describe('container check', () => {
  const ctr = parseMountinfo(`
700 600 0:62 / / rw - overlay overlay rw
701 700 8:1 /var/lib/sharedprop/volumes/netns/_data /run/netns rw master:301 - ext4 /dev/sda1 rw
702 700 8:1 /var/lib/sharedprop/volumes/other/_data /data rw shared:305 - ext4 /dev/sda1 rw
`);
  it('flags a slave mount as a container started without the runtime', () => {
    const [slave, shared] = checkContainerMounts('agent', [
      { destination: '/run/netns', volume: 'netns', entry: ctr[1] },
      { destination: '/data', volume: 'other', entry: ctr[2] },
    ]);
    expect(slave?.verdict).toBe('fail');
    expect(slave?.detail).toMatch(/started without --runtime sharedprop/);
    expect(shared?.verdict).toBe('ok');
  });
});

describe('a doubled mount is listed once', () => {
  // Managed mode: the data root (/) and the propagated mount (90) share peer group 1, so the
  // volume's mount point shows twice (91 hidden beneath 90, 92 on it), and so does every mount
  // made under it (93, 94): one path, two lines of mountinfo.
  const doubled = parseMountinfo(`
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
90 22 8:1 /var/lib/docker/plugins/0123abcd/propagated-mount ${PROP} rw,relatime shared:1 - ext4 /dev/sda1 rw
91 22 8:1 /var/lib/sharedprop/volumes/v/_data ${PROP}/v rw,relatime shared:301 - ext4 /dev/sda1 rw
92 90 8:1 /var/lib/sharedprop/volumes/v/_data ${PROP}/v rw,relatime shared:301 - ext4 /dev/sda1 rw
93 91 0:61 /etc ${PROP}/v/etc rw,relatime shared:302 - overlay overlay ${containerLayers('dead')}
94 92 0:61 /etc ${PROP}/v/etc rw,relatime shared:302 - overlay overlay ${containerLayers('dead')}
95 91 0:4 net:[4026532281] ${PROP}/v/ns1 rw shared:304 - nsfs nsfs rw
96 92 0:4 net:[4026532281] ${PROP}/v/ns1 rw shared:304 - nsfs nsfs rw
`);
  const running = runningWith(['0:62']);

  it('classifySubmounts gives one row per path', () => {
    const subs = classifySubmounts(doubled, `${PROP}/v`, running);
    expect(subs.map((s) => [s.path.slice(PROP.length), s.leaked])).toEqual([
      ['/v/etc', true],
      ['/v/ns1', false],
    ]);
  });

  it('the doctor names the leak once', () => {
    const result = checkVolume('v', `${PROP}/v`, doubled, running);
    expect(result.verdict).toBe('warn');
    expect(result.detail).toBe(`shared mount point, 2 submount(s), 1 leaked: ${PROP}/v/etc`);
  });

  it('two leaked mounts stacked at one path are one leaked path', () => {
    const stacked = parseMountinfo(`
91 22 8:1 /var/lib/sharedprop/volumes/v/_data ${PROP}/v rw shared:301 - ext4 /dev/sda1 rw
93 91 0:61 /etc ${PROP}/v/etc rw shared:302 - overlay overlay ${containerLayers('dead')}
94 93 0:63 /etc ${PROP}/v/etc rw shared:303 - overlay overlay ${containerLayers('dead2')}
`);
    const subs = classifySubmounts(stacked, `${PROP}/v`, running);
    expect(subs).toEqual([expect.objectContaining({ path: `${PROP}/v/etc`, leaked: true })]);
    expect(subs[0]?.device).toBe('0:63'); // the top of the stack describes the path
    expect(checkVolume('v', `${PROP}/v`, stacked, running).detail).toMatch(
      /1 submount\(s\), 1 leaked: \S+\/v\/etc$/,
    );
  });

  it('a path where a running container still holds a mount is not leaked (prune detaches by path)', () => {
    const mixed = parseMountinfo(`
91 22 8:1 /var/lib/sharedprop/volumes/v/_data ${PROP}/v rw shared:301 - ext4 /dev/sda1 rw
93 91 0:62 /etc ${PROP}/v/etc rw shared:302 - overlay overlay ${containerLayers('live')}
94 93 0:61 /etc ${PROP}/v/etc rw shared:303 - overlay overlay ${containerLayers('dead')}
`);
    expect(classifySubmounts(mixed, `${PROP}/v`, running)).toEqual([
      expect.objectContaining({ path: `${PROP}/v/etc`, leaked: false, reason: undefined }),
    ]);
  });
});
