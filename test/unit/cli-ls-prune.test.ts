/**
 * `sharedprop ls` and `sharedprop prune` through their real command definitions, with a fake
 * engine client and host: a failure is one line on stderr with its exit code, never a stack
 * trace, and a doubled mount is one row.
 */
import { EngineError } from '../../src/docker/engine-client.js';
import { CommandError } from '../../src/system/exec.js';
import { FAKE_ADDRESS, FakeEngine, runCli, socketError } from '../support/cli-fakes.js';
import { fooEngine, fooHost, HOST_MOUNTS, PLUGIN_ID, PROP } from '../support/cli-world.js';

const oneLine = (text: string) => {
  expect(text.endsWith('\n')).toBe(true);
  expect(text.trimEnd().split('\n')).toHaveLength(1);
  expect(text).not.toMatch(/^\s+at /m); // no stack frame
};

describe.each(['ls', 'prune'])('%s failures', (command) => {
  it('an unreachable engine: one line on stderr, nothing on stdout, exit 3', async () => {
    const run = await runCli([command], {
      engine: new FakeEngine({ failAll: socketError('ENOENT', 'list volumes') }),
    });
    expect(run.stderr).toBe(
      `sharedprop ${command}: cannot reach the Docker engine at ${FAKE_ADDRESS}: connect ENOENT /run/fake-docker.sock\n`,
    );
    expect(run.stdout).toBe('');
    expect(run.exitCode).toBe(3);
  });

  it('permission denied on the socket: says so, exit 3', async () => {
    const run = await runCli([command, '--json'], {
      engine: new FakeEngine({ failAll: socketError('EACCES', 'list volumes') }),
    });
    oneLine(run.stderr);
    expect(run.stderr).toMatch(
      new RegExp(`^sharedprop ${command}: permission denied connecting to the Docker engine at `),
    );
    expect(run.stdout).toBe('');
    expect(run.exitCode).toBe(3);
  });

  it('an error answer from the engine: one line, exit 3', async () => {
    const run = await runCli([command, '--plugin', 'foo'], {
      engine: fooEngine({
        failOn: {
          inspectVolume: new EngineError(
            'api',
            `the Docker engine at ${FAKE_ADDRESS} could not inspect volume v: HTTP 500: boom`,
            500,
          ),
        },
      }),
      host: fooHost(),
    });
    expect(run.stderr).toBe(
      `sharedprop ${command}: the Docker engine at ${FAKE_ADDRESS} could not inspect volume v: HTTP 500: boom\n`,
    );
    expect(run.exitCode).toBe(3);
  });

  it('an unreadable mount table: one line, exit 3', async () => {
    const host = fooHost();
    host.mounts = async () => {
      throw Object.assign(new Error("EACCES: permission denied, open '/proc/self/mountinfo'"), {
        code: 'EACCES',
      });
    };
    const run = await runCli([command, '--plugin', 'foo'], { engine: fooEngine(), host });
    expect(run.stderr).toBe(
      `sharedprop ${command}: EACCES: permission denied, open '/proc/self/mountinfo'\n`,
    );
    expect(run.exitCode).toBe(3);
  });

  it('a usage error exits 2', async () => {
    const run = await runCli([command, '--nope'], {});
    expect(run.stderr).toMatch(/unknown option '--nope'/);
    expect(run.exitCode).toBe(2);
  });
});

describe('ls lists a doubled mount once', () => {
  it('in the table and in JSON', async () => {
    const table = await runCli(['ls', '--plugin', 'foo'], {
      engine: fooEngine(),
      host: fooHost(),
    });
    expect(table.stdout).toMatch(/^v +\? +1 \(1 leaked\) +\/var\/lib\/docker\/plugins\//m);
    expect(table.exitCode).toBe(0);
    const json = await runCli(['ls', '--plugin', 'foo', '--json'], {
      engine: fooEngine(),
      host: fooHost(),
    });
    expect(JSON.parse(json.stdout)).toEqual([
      expect.objectContaining({
        name: 'v',
        mountpoint: `${PROP}/v`,
        submounts: [{ path: '/etc', fsType: 'overlay', leaked: true }],
      }),
    ]);
  });

  it('a volume removed between list and inspect is left out, not an error', async () => {
    const engine = fooEngine({
      volumes: [{ name: 'v', driver: 'foo:latest', mountpoint: '/mnt/volumes/v' }],
    });
    engine.inspectVolume = async (name) => {
      throw new EngineError('api', `no such volume ${name}`, 404);
    };
    const run = await runCli(['ls', '--plugin', 'foo', '--json'], { engine, host: fooHost() });
    expect(JSON.parse(run.stdout)).toEqual([]);
    expect(run.exitCode).toBe(0);
  });
});

describe('prune', () => {
  it('detaches a doubled leak once', async () => {
    const detached: string[] = [];
    const run = await runCli(['prune', '--plugin', 'foo'], {
      engine: fooEngine(),
      host: fooHost(),
      mounts: {
        async detachAll(dir, options) {
          expect(options).toEqual({ includeSelf: true });
          detached.push(dir);
          return { detached: [dir], lazy: [] };
        },
      },
    });
    expect(detached).toEqual([`${PROP}/v/etc`]);
    expect(run.stdout).toBe(`v: detached ${PROP}/v/etc (overlay)\n1 leaked submount(s) detached\n`);
    expect(run.exitCode).toBe(0);
  });

  it("a moved data root: takes the dead container's overlay in <DockerRootDir>/overlay2, never an operator's overlay", async () => {
    // The propagated mount moves with the data root, and the dead container's /etc with it.
    const prop = PROP.replace('/var/lib/docker/', '/srv/docker/');
    const moved = '/srv/docker/overlay2';
    const mounts = `${HOST_MOUNTS.replaceAll(PROP, prop).replaceAll('/var/lib/docker/overlay2', moved)}
95 91 0:66 / ${prop}/v/ops rw shared:306 - overlay overlay rw,lowerdir=/srv/l,upperdir=/srv/ops/upper,workdir=/srv/ops/work
96 91 0:67 / ${prop}/v/evil rw shared:307 - overlay overlay rw,lowerdir=/l,upperdir=${moved}-evil/x/diff,workdir=${moved}-evil/x/work
97 91 0:68 / ${prop}/v/default rw shared:308 - overlay overlay rw,lowerdir=/l,upperdir=/var/lib/docker/overlay2/x/diff,workdir=/var/lib/docker/overlay2/x/work
`;
    const detached: string[] = [];
    const run = await runCli(['prune', '--plugin', 'foo'], {
      engine: fooEngine({ info: { dockerRootDir: '/srv/docker' } }),
      host: fooHost({ mounts }),
      mounts: {
        async detachAll(dir) {
          detached.push(dir);
          return { detached: [dir], lazy: [] };
        },
      },
    });
    // The default storage root still counts (a second engine, or containerd's own).
    expect(detached.sort()).toEqual([`${prop}/v/default`, `${prop}/v/etc`]);
    expect(run.exitCode).toBe(0);
  });

  describe('a directory storage driver (vfs) on a btrfs subvolume root (/@)', () => {
    // A bind shows its path inside the filesystem: /@/var/lib/docker/vfs/..., on device 0:40.
    const mounts = `
22 1 0:40 /@ / rw shared:1 - btrfs /dev/sda1 rw
90 22 0:40 /@/var/lib/docker/plugins/${PLUGIN_ID}/propagated-mount ${PROP} rw shared:1 - btrfs /dev/sda1 rw
91 22 0:40 /@/var/lib/sharedprop/volumes/v/_data ${PROP}/v rw shared:301 - btrfs /dev/sda1 rw
93 91 0:40 /@/var/lib/docker/vfs/dir/dead/etc ${PROP}/v/etc rw shared:302 - btrfs /dev/sda1 rw
94 91 0:41 /@/var/lib/docker/vfs/dir/dead/etc ${PROP}/v/other-disk rw shared:303 - btrfs /dev/sdb1 rw
95 91 0:40 /@/var/lib/docker/vfs-old/dir/dead/etc ${PROP}/v/beside rw shared:304 - btrfs /dev/sda1 rw
96 91 0:40 /@/var/lib/docker/overlay2/abc/diff ${PROP}/v/layer rw shared:305 - btrfs /dev/sda1 rw
`;
    const prune = async (storageDriver: string) => {
      const detached: string[] = [];
      const run = await runCli(['prune', '--plugin', 'foo'], {
        engine: fooEngine({ info: { storageDriver } }),
        host: fooHost({ mounts }),
        mounts: {
          async detachAll(dir) {
            detached.push(dir);
            return { detached: [dir], lazy: [] };
          },
        },
      });
      expect(run.exitCode).toBe(0);
      return detached;
    };

    it("takes a dead container's directory on the filesystem that holds the layer directory only", async () => {
      expect(await prune('vfs')).toEqual([`${PROP}/v/etc`]);
    });

    it("with overlay2, a bind of a directory is no container root, not even of overlay2's", async () => {
      expect(await prune('overlay2')).toEqual([]);
    });
  });

  it('a leak that cannot be detached: one line on stderr, exit 1', async () => {
    const run = await runCli(['prune', '--plugin', 'foo'], {
      engine: fooEngine(),
      host: fooHost(),
      mounts: {
        async detachAll() {
          throw new CommandError('umount', [`${PROP}/v/etc`], 32, 'target is busy');
        },
      },
    });
    expect(run.stderr).toMatch(
      new RegExp(`^sharedprop prune: could not detach ${PROP}/v/etc \\(volume v\\): .+\\n$`),
    );
    oneLine(run.stderr);
    expect(run.stdout).toBe('0 leaked submount(s) detached\n');
    expect(run.exitCode).toBe(1);
  });
});
