/**
 * A VolumeDriver that does nothing and answers at once, in constant JSON: the floor of what
 * dockerd costs around any volume plugin. `make bench` installs it as a managed plugin next to
 * sharedprop (same Node, Node options and rootfs), so that its ratio shows how much of
 * sharedprop's is dockerd's.
 * Usage inside the plugin: node zero-cost-driver.mjs SOCKET [GET_FIELDS]
 * GET_FIELDS: JSON of the fields Get answers besides Name and Mountpoint (default: an empty
 * Status); given sharedprop's CreatedAt and Status, Get answers the document sharedprop answers.
 */
import http from 'node:http';
import { Buffer } from 'node:buffer';
import { mkdirSync, unlinkSync } from 'node:fs';

const socket = process.argv[2];
const getFields = JSON.parse(process.argv[3] ?? '{"Status":{}}');
const MOUNTPOINT = '/mnt/volumes/zero';
const answers = {
  '/Plugin.Activate': () => ({ Implements: ['VolumeDriver'] }),
  '/VolumeDriver.Capabilities': () => ({ Capabilities: { Scope: 'local' } }),
  '/VolumeDriver.Create': () => ({}),
  '/VolumeDriver.Remove': () => ({}),
  '/VolumeDriver.Unmount': () => ({}),
  '/VolumeDriver.Mount': () => ({ Mountpoint: MOUNTPOINT }),
  '/VolumeDriver.Path': () => ({ Mountpoint: MOUNTPOINT }),
  '/VolumeDriver.List': () => ({ Volumes: [] }),
  '/VolumeDriver.Get': (body) => ({
    Volume: { Name: String(body.Name), Mountpoint: MOUNTPOINT, ...getFields },
  }),
};

// Under the propagated mount, so that dockerd finds it on the host too.
mkdirSync(MOUNTPOINT, { recursive: true });
try {
  unlinkSync(socket);
} catch {
  // no stale socket
}
http
  .createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const answer = answers[req.url];
      let body = {};
      try {
        body = JSON.parse(Buffer.concat(chunks).toString() || '{}') ?? {};
      } catch {
        // the floor does not judge its input
      }
      const json = JSON.stringify(answer ? answer(body) : { Err: `unknown endpoint ${req.url}` });
      res.writeHead(answer ? 200 : 404, {
        'Content-Type': 'application/vnd.docker.plugins.v1.1+json',
        'Content-Length': Buffer.byteLength(json),
      });
      res.end(json);
    });
  })
  .listen(socket);
