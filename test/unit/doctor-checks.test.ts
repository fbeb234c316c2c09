import {
  checkDaemonNamespace,
  checkEngine,
  isOlderEngine,
  checkPlugin,
  checkRuntime,
  couldNotCheck,
  type RunningRoots,
} from '../../src/doctor/checks.js';
import {
  checkContainerMounts,
  checkSubpathMounts,
  checkVolume,
  classifySubmounts,
} from '../../src/doctor/volume-checks.js';
import { EngineError } from '../../src/docker/engine-client.js';
import { exitCodeOf, toJson, toText } from '../../src/doctor/report.js';
import { listeningInodes } from '../../src/docker/daemon-process.js';
import { parseMountinfo } from '../../src/system/mountinfo.js';
import { DEFAULT_ENGINE_STORAGE } from '../../src/system/engine-storage.js';

const PROP = '/var/lib/docker/plugins/0123abcd/propagated-mount';
/** The super options of container `id`'s root overlay in dockerd's storage. */
const containerLayers = (id: string) =>
  `rw,lowerdir=/var/lib/docker/overlay2/l/A,upperdir=/var/lib/docker/overlay2/${id}/diff,workdir=/var/lib/docker/overlay2/${id}/work`;

// Recorded from a host running the managed plugin: a volume mount point, a leaked bind of a
// dead container's /etc (overlay 0:61), a live container's bind (overlay 0:62), a netns file.
const host = parseMountinfo(`
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
90 22 8:1 /var/lib/docker/plugins/0123abcd/propagated-mount ${PROP} rw,relatime shared:300 - ext4 /dev/sda1 rw
91 90 8:1 /var/lib/sharedprop/volumes/netns/_data ${PROP}/netns rw,relatime shared:301 - ext4 /dev/sda1 rw
92 91 0:61 /etc ${PROP}/netns/etc rw,relatime shared:302 - overlay overlay ${containerLayers('dead')}
93 91 0:62 /srv ${PROP}/netns/srv rw,relatime shared:303 - overlay overlay ${containerLayers('live')}
94 91 0:4 net:[4026532281] ${PROP}/netns/qrouter-1 rw shared:304 - nsfs nsfs rw
95 22 8:1 /var/lib/sharedprop/volumes/plain/_data ${PROP}/plain rw,relatime master:301 - ext4 /dev/sda1 rw
96 22 8:1 /var/lib/sharedprop/volumes/dup/_data ${PROP}/dup rw,relatime shared:310 - ext4 /dev/sda1 rw
97 96 8:1 /var/lib/sharedprop/volumes/dup/_data ${PROP}/dup rw,relatime shared:311 - ext4 /dev/sda1 rw
98 22 8:1 /var/lib/sharedprop/volumes/twice/_data ${PROP}/twice rw,relatime shared:320 - ext4 /dev/sda1 rw
99 98 8:1 /var/lib/sharedprop/volumes/twice/_data ${PROP}/twice rw,relatime shared:320 - ext4 /dev/sda1 rw
`);

const runningWith = (devices: string[], roots: string[] = []): RunningRoots => ({
  devices: new Set(devices),
  roots: roots.map((root) => ({ device: '8:1', root })),
  storage: DEFAULT_ENGINE_STORAGE,
  layers: { device: '8:1', root: '/var/lib/docker/vfs' },
});

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

describe('daemon namespace check', () => {
  const slaveNs = parseMountinfo(`
500 400 8:1 / / rw,relatime master:1 - ext4 /dev/sda1 rw
501 500 8:1 /var/lib/docker/plugins/0123abcd/propagated-mount ${PROP} rw shared:300 master:1 - ext4 /dev/sda1 rw
`);

  it('fails for a dockerd in a slave mount namespace and names MountFlags=slave', () => {
    const result = checkDaemonNamespace({
      pid: 42,
      sameNamespace: false,
      daemonMounts: slaveNs,
      hostMounts: host,
      dataRoot: '/var/lib/docker',
      propagatedMount: PROP,
    });
    expect(result.verdict).toBe('fail');
    expect(result.detail).toMatch(/slave of the host's/);
    expect(result.detail).toMatch(/MountFlags=slave/);
    expect(result.fix).toMatch(/systemctl/);
  });

  it('a namespace of its own that receives nothing from the host is fine', () => {
    const own = parseMountinfo(`500 400 8:1 / / rw,relatime master:77 - ext4 /dev/sda1 rw
501 500 8:1 /var/lib/docker/plugins/0123abcd/propagated-mount ${PROP} rw shared:300 - ext4 /dev/sda1 rw`);
    expect(
      checkDaemonNamespace({
        pid: 42,
        sameNamespace: false,
        daemonMounts: own,
        hostMounts: host,
        propagatedMount: PROP,
      }).verdict,
    ).toBe('ok');
  });

  it('passes for a dockerd in the host namespace with a shared propagated mount', () => {
    expect(
      checkDaemonNamespace({
        pid: 42,
        sameNamespace: true,
        daemonMounts: host,
        propagatedMount: PROP,
      }).verdict,
    ).toBe('ok');
  });

  it('fails when the propagated mount is not shared', () => {
    const privateProp = parseMountinfo(`22 1 8:1 / / rw - ext4 /dev/sda1 rw
90 22 8:1 /x ${PROP} rw - ext4 /dev/sda1 rw`);
    expect(
      checkDaemonNamespace({
        pid: 42,
        sameNamespace: true,
        daemonMounts: privateProp,
        propagatedMount: PROP,
      }).detail,
    ).toMatch(/is private/);
  });

  it('warns when dockerd cannot be found', () => {
    expect(checkDaemonNamespace({}).verdict).toBe('warn');
  });
});

describe('engine, plugin and runtime checks', () => {
  it('engine', () => {
    expect(checkEngine({ version: '20.10.24', apiVersion: '1.41' }).detail).toBe(
      'Docker Engine 20.10.24 (API 1.41)',
    );
    expect(checkEngine(new Error('connect ENOENT')).verdict).toBe('fail');
  });

  it('subpath mounts: nothing when there are none, a warning that names each one', () => {
    expect(checkSubpathMounts([])).toBeUndefined();
    const result = checkSubpathMounts([
      { container: 'l3', volume: 'netns', destination: '/run/netns', subpath: 'agents' },
    ]);
    expect(result).toMatchObject({ check: 'subpath-mounts', verdict: 'warn' });
    expect(result?.detail).toMatch(/l3: netns\/agents at \/run\/netns/);
    expect(result?.detail).toMatch(/only what is mounted there after it starts/);
  });

  it('engine: names containerd and runc, and warns on an engine older than any tested', () => {
    const sid = { version: '28.5.2+dfsg4', apiVersion: '1.51', containerd: '2.1.9', runc: '1.3.6' };
    expect(checkEngine(sid)).toMatchObject({
      verdict: 'ok',
      detail: 'Docker Engine 28.5.2+dfsg4 (API 1.51), containerd 2.1.9, runc 1.3.6',
      data: { engine: '28.5.2+dfsg4', containerd: '2.1.9', runc: '1.3.6' },
    });
    const old = checkEngine({ version: '19.03.15', apiVersion: '1.40' });
    expect(old.verdict).toBe('warn');
    expect(old.detail).toMatch(/older than 20\.10/);
    expect(old.fix).toMatch(/upgrade Docker Engine/);
    for (const version of ['20.10.24', '20.10.0', '23.0.1', 'v26.1.5', '100.0.0']) {
      expect(isOlderEngine(version, [20, 10])).toBe(false);
    }
    for (const version of ['19.03.15', '20.9.0', '1.13.1', '17.06.2-ce']) {
      expect(isOlderEngine(version, [20, 10])).toBe(true);
    }
    // A version it cannot read is not called old.
    expect(isOlderEngine('dev', [20, 10])).toBe(false);
    expect(isOlderEngine(undefined, [20, 10])).toBe(false);
  });

  it('plugin', () => {
    const plugin = { id: 'abc', enabled: true, reference: 'sharedprop:latest' };
    expect(checkPlugin({ name: 'sharedprop' }).verdict).toBe('fail');
    expect(checkPlugin({ name: 'sharedprop', plugin: { ...plugin, enabled: false } }).fix).toMatch(
      /docker plugin enable/,
    );
    expect(
      checkPlugin({ name: 'sharedprop', plugin, socket: '/s', activate: new Error('ECONNREFUSED') })
        .verdict,
    ).toBe('fail');
    expect(
      checkPlugin({
        name: 'sharedprop',
        plugin,
        socket: '/s',
        activate: { implements: ['VolumeDriver'] },
      }).verdict,
    ).toBe('ok');
  });

  it('runtime', () => {
    expect(checkRuntime({ runtimes: { runc: { path: 'runc' } } }).verdict).toBe('fail');
    expect(
      checkRuntime({ runtimes: { sharedprop: { path: '/x' } }, executable: false }).detail,
    ).toMatch(/not executable/);
    expect(
      checkRuntime({
        runtimes: { sharedprop: { path: '/x' } },
        executable: true,
        defaultRuntime: 'sharedprop',
      }).detail,
    ).toMatch(/default runtime/);
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

describe('report', () => {
  const results = [
    { check: 'engine', verdict: 'ok' as const, detail: 'fine' },
    { check: 'runtime', verdict: 'fail' as const, detail: 'missing', fix: 'make install-runtime' },
  ];
  it('prints one line per check with the fix, without colour off a TTY', () => {
    expect(toText(results, false)).toBe(
      'ok    engine: fine\nfail  runtime: missing\n      fix: make install-runtime',
    );
    expect(exitCodeOf(results)).toBe(1);
    expect(JSON.parse(toJson(results))).toMatchObject({
      healthy: false,
      summary: { ok: 1, fail: 1, warn: 0 },
    });
  });
});

describe('finding the daemon socket', () => {
  it('reads listening sockets from /proc/net/unix', () => {
    const table = `Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 31337 /tmp/x/docker.sock
0000000000000000: 00000003 00000000 00000000 0001 03 31338 /tmp/x/docker.sock
0000000000000000: 00000002 00000000 00010000 0001 01 31339 /run/other.sock`;
    expect([...listeningInodes(table, '/tmp/x/docker.sock')]).toEqual(['31337']);
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

describe('fixes name the plugin and the runtime they are about', () => {
  const running = runningWith([]);

  it('plugin: install under the name asked for', () => {
    expect(checkPlugin({ name: 'foo' }).fix).toMatch(/make install PLUGIN_NAME=foo/);
    expect(checkPlugin({ name: 'sharedprop' }).fix).toBe(
      'run `make install`, or start `sharedprop serve` on the host',
    );
  });

  it('daemon-namespace: restarts the plugin that was found', () => {
    const privateProp = parseMountinfo(`22 1 8:1 / / rw - ext4 /dev/sda1 rw
90 22 8:1 /x ${PROP} rw - ext4 /dev/sda1 rw`);
    const result = checkDaemonNamespace({
      pid: 42,
      sameNamespace: true,
      daemonMounts: privateProp,
      propagatedMount: PROP,
      plugin: 'foo:latest',
    });
    expect(result.fix).toMatch(/^sharedprop plugin restart --name foo:latest/);
  });

  it('runtime: registers the name asked for', () => {
    const missing = checkRuntime({ runtimes: {} }, 'bar');
    expect(missing.detail).toMatch(/no runtime named bar/);
    expect(missing.fix).toMatch(/"bar"/);
    expect(
      checkRuntime({ runtimes: { bar: { path: '/x' } }, executable: false }, 'bar').fix,
    ).toMatch(/runtime bar/);
  });

  it('volume: restart and prune commands carry the plugin', () => {
    const ref = { name: 'foo:latest', managed: true };
    expect(checkVolume('dup', `${PROP}/dup`, host, running, ref).fix).toBe(
      'sharedprop plugin restart --name foo:latest',
    );
    expect(checkVolume('plain', `${PROP}/plain`, host, running, ref).fix).toMatch(/foo:latest/);
    expect(checkVolume('netns', `${PROP}/netns`, host, running, ref).fix).toMatch(
      /^sharedprop prune --plugin foo \(or sharedprop doctor --plugin foo --fix\)/,
    );
    expect(
      checkVolume('plain', `${PROP}/plain`, host, running, { name: 'foo', managed: false }).fix,
    ).toMatch(/restart the `sharedprop serve` that serves foo/);
  });

  it('container: names the runtime asked for', () => {
    const [slave] = checkContainerMounts(
      'agent',
      [
        {
          destination: '/run/netns',
          volume: 'netns',
          entry: parseMountinfo('701 700 8:1 /x /run/netns rw master:301 - ext4 /dev/sda1 rw')[0],
        },
      ],
      'bar',
    );
    expect(slave?.detail).toMatch(/started without --runtime bar/);
    expect(slave?.fix).toMatch(/--runtime bar \(compose: runtime: bar\), or make bar/);
  });
});

describe('a check that could not be made', () => {
  it('says what stood in the way, and the exit code is 3 even with another failure', () => {
    const denied = Object.assign(new Error("EACCES: permission denied, open '/proc/7/mountinfo'"), {
      code: 'EACCES',
    });
    const result = couldNotCheck('daemon-namespace', denied);
    expect(result).toMatchObject({ verdict: 'fail', couldNotCheck: true });
    expect(result.detail).toBe(
      "could not check: EACCES: permission denied, open '/proc/7/mountinfo'",
    );
    expect(result.fix).toMatch(/as root/);
    const failed = { check: 'runtime', verdict: 'fail' as const, detail: 'missing' };
    expect(exitCodeOf([failed])).toBe(1);
    expect(exitCodeOf([failed, result])).toBe(3);
    expect(JSON.parse(toJson([failed, result]))).toMatchObject({ healthy: false, complete: false });
  });

  it('an engine error is reported as the engine said it', () => {
    const error = new EngineError(
      'permission',
      'permission denied connecting to the Docker engine at unix:///s: connect EACCES /s',
    );
    expect(checkEngine(error)).toMatchObject({
      verdict: 'fail',
      couldNotCheck: true,
      detail: 'permission denied connecting to the Docker engine at unix:///s: connect EACCES /s',
    });
  });
});
