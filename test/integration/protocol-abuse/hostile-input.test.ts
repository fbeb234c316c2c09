/**
 * The VolumeDriver protocol under abuse, against the real `sharedprop serve` with real mounts:
 * hostile names on every endpoint that takes one, 50 MB bodies, 100,000 levels of nesting, and
 * requests that are not HTTP or lie about their length. docs/guarantees.md names this test.
 */
import { jest } from '@jest/globals';
import { hostMountsWithin } from '../../support/host-mounts.js';
import { exchange, RawClient, type RawResponse } from '../../support/raw-http.js';
import { listed, volumesDir } from '../../support/volume-checks.js';
import { ENDPOINTS, HOSTILE_NAMES, NAMED } from './fuzz-fields.js';
import { nest } from './fuzz-items.js';
import { parseBody } from './fuzz-model.js';
import { alive, destroyDrivers, entries, MiB, rssMiB, startDriver } from './harness.js';

jest.setTimeout(300_000);
afterEach(destroyDrivers);

describe('protocol abuse: hostile input', () => {
  it('hostile names, 50 MB bodies and 100,000 levels of nesting get a JSON 4xx; the driver stays up, answers the next request, and creates nothing', async () => {
    const driver = await startDriver();
    const pid = driver.pid!;
    const dataRootBefore = await entries(driver.dataRoot);
    const mountsBefore = (await hostMountsWithin(driver.base)).map((e) => e.mountPoint);
    const client = new RawClient(driver.socket, 1, 60_000);
    const stillUp = async (after: string) => {
      const answer = await client.send({ path: '/Plugin.Activate', body: '' });
      expect({ after, status: answer.status }).toEqual({ after, status: 200 });
      const get = await client.send({ path: ENDPOINTS.Get, body: '{"Name":"nosuch"}' });
      expect({ after, status: get.status }).toEqual({ after, status: 404 });
    };
    const expect4xx = (what: string, answer: RawResponse) => {
      const body = parseBody(answer);
      expect({ what, status: answer.status >= 400 && answer.status < 500, json: !!body }).toEqual({
        what,
        status: true,
        json: true,
      });
      expect({ what, err: typeof body?.Err }).toEqual({ what, err: 'string' });
    };
    try {
      // Hostile names, on every endpoint that takes one.
      for (const name of HOSTILE_NAMES) {
        for (const op of NAMED) {
          const fields = [`"ID":"c"`, `"Opts":{}`];
          if (name.json !== undefined) fields.unshift(`"Name":${name.json}`);
          const body = `{${fields.join(',')}}`;
          expect4xx(`${op} ${body.slice(0, 80)}`, await client.send({ path: ENDPOINTS[op], body }));
        }
      }
      await stillUp('hostile names');

      // 50 MB: with a Content-Length, chunked without one, and as 50 MB of '['. Read on a
      // connection of their own, so that an answer sent before the body is read is seen.
      const fifty = 50 * MiB;
      const pad = Buffer.alloc(fifty, 'x');
      const bigJson = [
        Buffer.from('{"Name":"big","Opts":{"pad":"'),
        pad,
        Buffer.from('"}}'),
      ] as const;
      const length = bigJson.reduce((n, b) => n + b.length, 0);
      const head = (extra: string) =>
        `POST /VolumeDriver.Create HTTP/1.1\r\nHost: sharedprop\r\nContent-Type: application/json\r\n${extra}\r\n`;
      const chunk = (b: Buffer) => [
        Buffer.from(`${b.length.toString(16)}\r\n`),
        b,
        Buffer.from('\r\n'),
      ];
      const cases: [string, (string | Buffer)[]][] = [
        ['50 MB with a Content-Length', [head(`Content-Length: ${length}\r\n`), ...bigJson]],
        [
          '50 MB chunked',
          [head('Transfer-Encoding: chunked\r\n'), ...bigJson.flatMap(chunk), '0\r\n\r\n'],
        ],
        ["50 MB of '['", [head(`Content-Length: ${fifty}\r\n`), Buffer.alloc(fifty, '[')]],
      ];
      for (const [what, parts] of cases) {
        const started = Date.now();
        const answer = await exchange(driver.socket, parts, 60_000);
        expect({ what, status: answer.status, writeError: answer.writeError }).toEqual({
          what,
          status: expect.any(Number),
          writeError: answer.writeError,
        });
        expect4xx(what, {
          status: answer.status!,
          headers: {},
          text: answer.body ?? answer.raw,
        });
        expect(Date.now() - started).toBeLessThan(30_000);
        await stillUp(what);
      }

      // Deep nesting, each under the body limit of any sane driver.
      const deep: [string, string, string][] = [
        ['[ x 100,000 to Get', ENDPOINTS.Get, nest('[', '', ']', 100_000)],
        ['[ x 100,000 to Create', ENDPOINTS.Create, nest('[', '', ']', 100_000)],
        ['[ x 100,000 unclosed', ENDPOINTS.Create, '['.repeat(100_000)],
        ['{"a": x 100,000', ENDPOINTS.Create, nest('{"a":', '1', '}', 100_000)],
        ['{"a": x 100,000 unclosed', ENDPOINTS.Mount, '{"a":'.repeat(100_000)],
        ['Name nested 100,000 deep', ENDPOINTS.Create, `{"Name":${nest('[', '', ']', 100_000)}}`],
        [
          'ID nested 100,000 deep',
          ENDPOINTS.Mount,
          `{"Name":"deep1","ID":${nest('[', '', ']', 100_000)}}`,
        ],
        [
          'Opts nested 100,000 deep',
          ENDPOINTS.Create,
          `{"Name":"deep1","Opts":${nest('{"a":', '"x"', '}', 100_000)}}`,
        ],
        [
          'Opts value nested 100,000 deep',
          ENDPOINTS.Create,
          `{"Name":"deep1","Opts":{"mode":${nest('[', '"0750"', ']', 100_000)}}}`,
        ],
        ['[ x 500,000 (1 MB)', ENDPOINTS.Get, nest('[', '', ']', 500_000)],
      ];
      for (const [what, endpoint, body] of deep) {
        const started = Date.now();
        expect4xx(what, await client.send({ path: endpoint, body }));
        expect(Date.now() - started).toBeLessThan(10_000);
        await stillUp(what);
      }

      // Not even HTTP, or HTTP that lies: answered or cut off, never a crash.
      const lies: [string, string][] = [
        ['garbage', 'GARBAGE\r\n\r\n'],
        ['binary', '\u0000\u0001\u0002\u00ff'.repeat(100)],
        [
          'Content-Length longer than the body',
          'POST /VolumeDriver.Create HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"Name":"liar"',
        ],
        [
          'bad chunk size',
          'POST /VolumeDriver.Create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
        ],
        [
          'negative Content-Length',
          'POST /VolumeDriver.Create HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{"Name":"liar"}',
        ],
        [
          'two Content-Lengths',
          'POST /VolumeDriver.Create HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 15\r\n\r\n{"Name":"liar"}',
        ],
        [
          'a 60 KB header',
          `POST /VolumeDriver.Get HTTP/1.1\r\nHost: x\r\nX-Big: ${'y'.repeat(60_000)}\r\nContent-Length: 2\r\n\r\n{}`,
        ],
        ['a 60 KB path', `POST /${'p'.repeat(60_000)} HTTP/1.1\r\nHost: x\r\n\r\n`],
      ];
      for (const [what, request] of lies) {
        const answer = await exchange(driver.socket, [request], 3_000);
        if (answer.status !== undefined) {
          expect({ what, status: answer.status >= 400 && answer.status < 500 }).toEqual({
            what,
            status: true,
          });
        }
        await stillUp(what);
      }

      expect(alive(pid)).toBe(true);
      expect(await entries(volumesDir(driver))).toEqual([]);
      expect(await entries(driver.mountRoot)).toEqual(['.sharedprop-mountroot']);
      expect(await entries(driver.dataRoot)).toEqual(dataRootBefore);
      expect((await hostMountsWithin(driver.base)).map((e) => e.mountPoint)).toEqual(mountsBefore);
      expect(await listed(driver)).toEqual([]);
      expect(await rssMiB(pid)).toBeLessThan(300);
      // And it still does real work.
      await driver.ok('/VolumeDriver.Create', { Name: 'after-abuse', Opts: {} });
      await driver.ok('/VolumeDriver.Remove', { Name: 'after-abuse' });
    } finally {
      client.close();
    }
  });
});
