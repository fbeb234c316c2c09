/** The doctor's checks of dockerd's mount namespace, the engine, the plugin and the runtime. */
import {
  checkDaemonNamespace,
  checkEngine,
  isOlderEngine,
  checkPlugin,
  checkRuntime,
} from '../../../src/doctor/checks.js';
import { checkSubpathMounts } from '../../../src/doctor/volume-checks.js';
import { listeningInodes } from '../../../src/docker/daemon-process.js';
import { parseMountinfo } from '../../../src/system/mountinfo.js';
import { host, PROP } from './host-table.js';

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

describe('finding the daemon socket', () => {
  it('reads listening sockets from /proc/net/unix', () => {
    const table = `Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 31337 /tmp/x/docker.sock
0000000000000000: 00000003 00000000 00000000 0001 03 31338 /tmp/x/docker.sock
0000000000000000: 00000002 00000000 00010000 0001 01 31339 /run/other.sock`;
    expect([...listeningInodes(table, '/tmp/x/docker.sock')]).toEqual(['31337']);
  });
});
