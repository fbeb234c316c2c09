/** A fake of dockerd's mount namespace for the upgrade and restart logic (HostMountOps). */
import type { HostMountOps } from '../../src/install/upgrade-mounts.js';
import type { MountEntry } from '../../src/system/mountinfo.js';

let nextId = 100;
export const hostEntry = (mountPoint: string): MountEntry => ({
  id: nextId++,
  parentId: 1,
  device: '0:1',
  root: '/',
  mountPoint,
  mountOptions: 'rw',
  unbindable: false,
  fsType: 'ext4',
  source: '/dev/x',
  superOptions: 'rw',
});

/**
 * A mount table that mount(8) and umount(8) change, well enough for the upgrade's logic: a bind
 * adds a mount; an rbind also copies the mounts beneath its source; `umount -l P` takes the top
 * mount at P and everything mounted beneath P after it (what was hidden below P comes to light).
 */
export class FakeHostMounts implements HostMountOps {
  readonly calls: string[] = [];
  constructor(public entries: MountEntry[]) {}
  async table() {
    return [...this.entries];
  }
  async mount(args: string[]) {
    this.calls.push(`mount ${args.join(' ')}`);
    const [flag, source, target] = args;
    if (flag === '--bind' && target) this.entries.push(hostEntry(target));
    if (flag === '--rbind' && source && target) {
      const below = this.entries.filter(
        (e) => e.mountPoint === source || e.mountPoint.startsWith(source + '/'),
      );
      const seen = new Set<string>();
      for (const e of below) {
        if (seen.has(e.mountPoint)) continue;
        seen.add(e.mountPoint);
        this.entries.push(hostEntry(target + e.mountPoint.slice(source.length)));
      }
    }
  }
  async umount(args: string[]) {
    this.calls.push(`umount ${args.join(' ')}`);
    const target = args.at(-1) as string;
    const top = this.entries.filter((e) => e.mountPoint === target).at(-1);
    if (!top) throw new Error(`not mounted: ${target}`);
    this.entries = this.entries.filter(
      (e) =>
        !(e.id >= top.id && (e.mountPoint === target || e.mountPoint.startsWith(target + '/'))),
    );
  }
  async mkdir(dir: string) {
    this.calls.push(`mkdir ${dir}`);
  }
  async rmdir(dir: string) {
    this.calls.push(`rmdir ${dir}`);
  }
  at(dir: string) {
    return this.entries.filter((e) => e.mountPoint === dir).length;
  }
}
