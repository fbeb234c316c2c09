import { parseMountinfo } from '../../src/system/mountinfo.js';
import { mountRootShowsTwice } from '../../src/system/mount-root-peers.js';

/** A mountinfo line: id, parent, device, root, mount point, optional fields. */
const line = (id: number, parent: number, dev: string, root: string, at: string, opt = '') =>
  `${id} ${parent} ${dev} ${root} ${at} rw,relatime ${opt}${opt ? ' ' : ''}- ext4 /dev/vda rw`;

const table = (...lines: string[]) => parseMountinfo(lines.join('\n'));

describe('mountRootShowsTwice: when the mount root must leave its holder’s peer group', () => {
  const ROOT = '/t/data/mounts';
  it('a data root bound onto itself inside a shared parent: its parent shows the same place', () => {
    const t = table(
      line(1, 0, '8:1', '/', '/', 'shared:1'),
      line(20, 1, '0:50', '/', '/t', 'shared:7'),
      line(21, 20, '0:50', '/data', '/t/data', 'shared:7'),
    );
    expect(mountRootShowsTwice(t, ROOT)).toBe(true);
  });

  it('a peer that shows another place of the filesystem is no reason (e2e: dockerd’s binds)', () => {
    const t = table(
      line(1, 0, '8:1', '/', '/', 'shared:1'),
      line(20, 1, '0:50', '/data', '/t/data', 'shared:7'),
      line(22, 1, '0:50', '/other', '/elsewhere', 'shared:7'),
    );
    expect(mountRootShowsTwice(t, ROOT)).toBe(false);
  });

  it('no peer here (peers in other namespaces only), a private holder, or another device: no', () => {
    expect(
      mountRootShowsTwice(table(line(20, 1, '0:50', '/data', '/t/data', 'shared:7')), ROOT),
    ).toBe(false);
    expect(
      mountRootShowsTwice(
        table(line(20, 1, '0:50', '/', '/t'), line(21, 20, '0:50', '/data', '/t/data')),
        ROOT,
      ),
    ).toBe(false);
    expect(
      mountRootShowsTwice(
        table(
          line(20, 1, '0:51', '/', '/t', 'shared:7'),
          line(21, 20, '0:50', '/data', '/t/data', 'shared:7'),
        ),
        ROOT,
      ),
    ).toBe(false);
  });

  it('something mounted at or in the mount root already: left as it is', () => {
    const peers = [
      line(20, 1, '0:50', '/', '/t', 'shared:7'),
      line(21, 20, '0:50', '/data', '/t/data', 'shared:7'),
    ];
    expect(mountRootShowsTwice(table(...peers, line(30, 21, '0:60', '/', ROOT)), ROOT)).toBe(false);
    expect(mountRootShowsTwice(table(...peers, line(31, 21, '0:60', '/', `${ROOT}/v`)), ROOT)).toBe(
      false,
    );
    expect(mountRootShowsTwice(table(...peers), ROOT)).toBe(true);
  });
});
