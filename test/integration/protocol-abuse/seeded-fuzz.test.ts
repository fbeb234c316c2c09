/**
 * The VolumeDriver protocol under abuse, against the real `sharedprop serve` with real mounts: a
 * seeded fuzz of more than 10,000 requests over every endpoint, checked against a model of the
 * volumes and their per-ID mount counts (fuzz-fields.ts, fuzz-items.ts and fuzz-model.ts hold
 * what it sends and how it judges the answers). docs/guarantees.md names this test.
 *
 * Reproduce a fuzz failure with the seed it prints: SHAREDPROP_FUZZ_SEED=<seed> npm run
 * test:integration -- test/integration/protocol-abuse/seeded-fuzz.test.ts
 * -t 'seeded protocol fuzz'.
 */
import { jest } from '@jest/globals';
import fc from 'fast-check';
import { readFile } from 'node:fs/promises';
import { RawClient, type RawResponse } from '../../support/raw-http.js';
import { ALL_OPS, CONTENT_TYPES, ENDPOINTS, text, VALID_OPTS } from './fuzz-fields.js';
import { itemArb } from './fuzz-items.js';
import { judge, Model, parseBody, plan, type Sent } from './fuzz-model.js';
import {
  alive,
  destroyDrivers,
  diskProblems,
  pairs,
  rssMiB,
  SEED,
  settledDiskProblems,
  startDriver,
} from './harness.js';

jest.setTimeout(300_000);
afterEach(destroyDrivers);

/** Generated requests; a drain expands to several, so more than this many are sent. */
const FUZZ_ITEMS = 10_000;
const IN_FLIGHT = 6;

/** The Node flags of the managed plugin's entrypoint (config.json), e.g. its heap limits. */
async function pluginNodeFlags(): Promise<string[]> {
  const manifest = JSON.parse(await readFile('config.json', 'utf8')) as { entrypoint: string[] };
  const flags = manifest.entrypoint.filter((arg) => arg.startsWith('--max-'));
  expect(flags.length).toBeGreaterThan(0);
  return flags;
}

describe('protocol abuse: seeded fuzz', () => {
  it('seeded protocol fuzz: 10,000+ valid and invalid requests over every endpoint; no 5xx, a JSON 4xx with Err for bad input, Get and List agree with a model of volumes and per-ID counts, Remove refused while counted, no crash, RSS bounded', async () => {
    console.log(`protocol fuzz seed: ${SEED} (set SHAREDPROP_FUZZ_SEED to replay another)`);
    // With the managed plugin's own heap limits: what ships, and a young generation small enough
    // that growth beyond the bound is a leak rather than garbage not yet collected.
    const driver = await startDriver({ logLevel: 'error', nodeFlags: await pluginNodeFlags() });
    const pid = driver.pid!;
    const client = new RawClient(driver.socket, IN_FLIGHT);
    const model = new Model();
    const problems: string[] = [];
    let problemCount = 0;
    let sentCount = 0;
    const statuses = new Map<string, number>();
    const note = (index: number, sent: Sent, what: string[]) => {
      problemCount++;
      if (problems.length < 40) problems.push(`#${index} ${sent.label}: ${what.join('; ')}`);
    };
    const send = async (sent: Sent): Promise<RawResponse | Error> => {
      sentCount++;
      try {
        const answer = await client.send({
          path: sent.path,
          method: sent.method,
          body: sent.body,
          contentType: sent.contentType,
          chunked: sent.chunked,
        });
        const op = ALL_OPS.find((o) => ENDPOINTS[o] === sent.path) ?? 'unknown path';
        const key = `${sent.method === 'POST' ? op : sent.method} ${answer.status}`;
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
        return answer;
      } catch (error) {
        return error as Error;
      }
    };
    /** Sends and judges one request; returns whether the model must be read back. */
    const run = async (index: number, sent: Sent): Promise<boolean> => {
      const answer = await send(sent);
      if (answer instanceof Error) {
        note(index, sent, [`no answer: ${answer.message}`]);
        return true;
      }
      const judged = judge(driver, model, sent, answer);
      if (judged.problems.length > 0) note(index, sent, judged.problems);
      return judged.resync;
    };
    /** After a disagreement, the model takes the driver's word, so one bug is reported once. */
    const resync = async () => {
      const list = await client.send({ path: ENDPOINTS.List, body: '{}' });
      sentCount++;
      const names = ((parseBody(list)?.Volumes as { Name: string }[] | undefined) ?? []).map(
        (v) => v.Name,
      );
      const old = new Map(model.volumes);
      model.volumes.clear();
      for (const name of names) {
        const get = await client.send({
          path: ENDPOINTS.Get,
          body: JSON.stringify({ Name: name }),
        });
        sentCount++;
        const ids =
          (parseBody(get)?.Volume as { Status?: { mountIds?: Record<string, number> } } | undefined)
            ?.Status?.mountIds ?? {};
        model.volumes.set(name, {
          canon: old.get(name)?.canon,
          counts: new Map(pairs(ids) as [string, number][]),
        });
      }
    };

    const items = fc.sample(itemArb, { numRuns: FUZZ_ITEMS, seed: SEED });
    const started = Date.now();
    const rssStart = await rssMiB(pid);
    let rssPeak = rssStart;
    let batch: [number, Sent][] = [];
    const flush = async () => {
      const queue = batch;
      batch = [];
      let needResync = false;
      const worker = async () => {
        for (let next = queue.shift(); next; next = queue.shift()) {
          if (await run(next[0], next[1])) needResync = true;
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
      if (needResync) await resync();
    };

    for (const [index, item] of items.entries()) {
      if (item.kind === 'drain') {
        // Unmount every counted ID of a volume, then Remove it: Removes that succeed, and the
        // Creates after them, happen as often as in real use.
        await flush();
        const volume = model.volumes.get(item.name);
        const calls: Sent[] = [];
        for (const [id, n] of volume?.counts ?? []) {
          for (let i = 0; i < n; i++) {
            calls.push(
              plan({
                kind: 'call',
                op: 'Unmount',
                name: text(item.name, 'valid'),
                id: text(id, 'valid'),
                opts: VALID_OPTS[0]!,
                extra: null,
                transport: { contentType: CONTENT_TYPES[0]![0], chunked: false, validity: 'valid' },
              }),
            );
          }
        }
        calls.push(
          plan({
            kind: 'call',
            op: 'Remove',
            name: text(item.name, 'valid'),
            id: text('a', 'valid'),
            opts: VALID_OPTS[0]!,
            extra: null,
            transport: { contentType: CONTENT_TYPES[0]![0], chunked: false, validity: 'valid' },
          }),
        );
        for (const sent of calls) if (await run(index, sent)) await resync();
        continue;
      }
      const sent = plan(item);
      if (sent.changes) {
        await flush();
        if (await run(index, sent)) await resync();
      } else {
        batch.push([index, sent]);
        if (batch.length >= 64) await flush();
      }
      if (index % 1000 === 999) {
        await flush();
        rssPeak = Math.max(rssPeak, await rssMiB(pid));
        const found = await diskProblems(driver, [...model.volumes.keys()]);
        if (found.length > 0) {
          problemCount++;
          problems.push(`after #${index}, on disk: ${found.join('; ')}`);
        }
      }
    }
    await flush();
    client.close();
    const seconds = (Date.now() - started) / 1000;
    const rssEnd = await rssMiB(pid).catch(() => NaN);
    rssPeak = Math.max(rssPeak, rssEnd);

    // The end: every check adds to the one report, so that a run shows all that is wrong.
    const end = (what: string) => {
      problemCount++;
      problems.push(`at the end: ${what}`);
    };
    if (!alive(pid) || driver.pid !== pid) end('the driver process died');
    for (const found of await settledDiskProblems(driver, [...model.volumes.keys()])) end(found);
    for (const line of (await driver.log()).split('\n')) {
      if (line.includes('"level":"error"')) end(`the log holds an error: ${line.slice(0, 300)}`);
    }
    if (!(rssEnd < 200)) end(`RSS ${rssEnd.toFixed(0)} MiB (the bound is 200 MiB)`);
    if (!(rssEnd - rssStart < 60)) {
      end(
        `RSS grew by ${(rssEnd - rssStart).toFixed(0)} MiB (${rssStart.toFixed(0)} to ${rssEnd.toFixed(0)}; the bound is +60)`,
      );
    }
    console.log(
      `protocol fuzz seed ${SEED}: ${sentCount} requests in ${seconds.toFixed(1)} s; answers ${JSON.stringify(Object.fromEntries([...statuses].sort()))}; volumes at the end ${JSON.stringify([...model.volumes.keys()].map((n) => n.slice(0, 20)))}; RSS ${rssStart.toFixed(0)} -> ${rssEnd.toFixed(0)} MiB (peak ${rssPeak.toFixed(0)}); ${problemCount} problems`,
    );

    expect(sentCount).toBeGreaterThanOrEqual(10_000);
    expect({ seed: SEED, problemCount, problems }).toEqual({
      seed: SEED,
      problemCount: 0,
      problems: [],
    });
  });
});
