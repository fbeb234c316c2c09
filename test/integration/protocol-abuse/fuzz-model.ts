/**
 * The seeded protocol fuzz (seeded-fuzz.test.ts), the model and the judge: a model of the
 * volumes and their per-ID mount counts that predicts each answer, what each generated item
 * sends and how it must be answered, and the check of an answer against both. The kill -9 storm
 * (kill-storm.test.ts) predicts its retried calls with the same model.
 */
import type { DriverProcess } from '../../support/driver-process.js';
import type { RawResponse } from '../../support/raw-http.js';
import { CHANGES, ENDPOINTS, NAMED, type Op, type Validity } from './fuzz-fields.js';
import type { Item } from './fuzz-items.js';
import { mountpointOf, type Status } from '../../support/volume-checks.js';
import { pairs } from './harness.js';

interface ModelVolume {
  /** undefined: not known (the model was read back from the driver). */
  canon?: string;
  counts: Map<string, number>;
}

interface Prediction {
  /** Right answers, the first the one expected; 200 applies `apply`. */
  statuses: number[];
  apply?: () => void;
}

export class Model {
  readonly volumes = new Map<string, ModelVolume>();

  total(name: string): number {
    let sum = 0;
    for (const n of this.volumes.get(name)?.counts.values() ?? []) sum += n;
    return sum;
  }

  predict(op: Op, name: string, id: string, canon: string | undefined): Prediction {
    const volume = this.volumes.get(name);
    switch (op) {
      case 'Create':
        if (!volume)
          return {
            statuses: [200],
            apply: () => this.volumes.set(name, { canon, counts: new Map() }),
          };
        if (volume.canon === undefined) return { statuses: [200, 409] };
        return { statuses: [volume.canon === canon ? 200 : 409] };
      case 'Remove':
        if (!volume) return { statuses: [404] };
        if (this.total(name) > 0) return { statuses: [409] };
        return { statuses: [200], apply: () => this.volumes.delete(name) };
      case 'Mount':
        if (!volume) return { statuses: [404] };
        return {
          statuses: [200],
          apply: () => volume.counts.set(id, (volume.counts.get(id) ?? 0) + 1),
        };
      case 'Unmount': {
        // Nothing promises how an Unmount of a volume that does not exist is answered.
        if (!volume) return { statuses: [404, 200] };
        return {
          statuses: [200],
          apply: () => {
            const n = volume.counts.get(id) ?? 0;
            if (n > 1) volume.counts.set(id, n - 1);
            else volume.counts.delete(id);
          },
        };
      }
      case 'Get':
      case 'Path':
        return { statuses: [volume ? 200 : 404] };
      default:
        return { statuses: [200] };
    }
  }
}

export interface Sent {
  label: string;
  path: string;
  method: string;
  body: string | Buffer;
  contentType: string | null;
  chunked: boolean;
  /** What must be answered. */
  expect:
    | { kind: 'exact'; op: Op; name: string; id: string; canon?: string }
    | { kind: 'maybe'; op: Op; name: string; id: string; canon?: string }
    | { kind: 'body-free'; op: Op; lenient: boolean }
    | { kind: '4xx' };
  changes: boolean;
}

const worst = (...validities: Validity[]): Validity =>
  validities.includes('invalid') ? 'invalid' : validities.includes('maybe') ? 'maybe' : 'valid';

export function plan(item: Exclude<Item, { kind: 'drain' }>): Sent {
  switch (item.kind) {
    case 'call': {
      const { op, name, id, opts, extra, transport } = item;
      const fields: string[] = [];
      if (name.json !== undefined) fields.push(`"Name":${name.json}`);
      const withId = op === 'Mount' || op === 'Unmount';
      if (withId && id.json !== undefined) fields.push(`"ID":${id.json}`);
      if (op === 'Create' && opts.json !== undefined) fields.push(`"Opts":${opts.json}`);
      if (extra) fields.push(extra);
      const body = `{${fields.join(',')}}`;
      const base = {
        label: `${op} ${body.length > 160 ? `${body.slice(0, 160)}...` : body}${transport.chunked ? ' (chunked)' : ''} [${transport.contentType ?? 'no type'}]`,
        path: ENDPOINTS[op],
        method: 'POST',
        body,
        contentType: transport.contentType,
        chunked: transport.chunked,
        changes: CHANGES.has(op),
      };
      if (!NAMED.has(op)) {
        return {
          ...base,
          expect: { kind: 'body-free', op, lenient: transport.validity !== 'valid' },
        };
      }
      const validity = worst(
        name.validity,
        withId ? id.validity : 'valid',
        op === 'Create' ? opts.validity : 'valid',
        transport.validity,
      );
      if (validity === 'invalid') return { ...base, expect: { kind: '4xx' } };
      const target = { op, name: name.value!, id: withId ? id.value! : '', canon: opts.canon };
      return { ...base, expect: { kind: validity === 'valid' ? 'exact' : 'maybe', ...target } };
    }
    case 'raw': {
      const { op, body, transport } = item;
      const base = {
        label: `${op} raw ${body.label.length > 120 ? `${body.label.slice(0, 120)}...` : body.label}${transport.chunked ? ' (chunked)' : ''} [${transport.contentType ?? 'no type'}]`,
        path: ENDPOINTS[op],
        method: 'POST',
        body: body.make(),
        contentType: transport.contentType,
        chunked: transport.chunked,
        changes: CHANGES.has(op),
      };
      const cls = body.cls;
      if (cls === 'malformed' || cls === 'oversized') return { ...base, expect: { kind: '4xx' } };
      // Whether a byte-order mark is skipped is not promised: if it is, this is a Get (or Path,
      // or List) of fz0, answered as the model says.
      if (cls === 'bom') return { ...base, expect: { kind: 'maybe', op, name: 'fz0', id: '' } };
      if (NAMED.has(op)) return { ...base, expect: { kind: '4xx' } };
      // List, Capabilities, Activate take no arguments: no body and `null` (what dockerd
      // sends) must work; other JSON may be refused or ignored.
      const lenient =
        transport.validity !== 'valid' || cls === 'blank' || cls === 'other' || cls === 'object';
      return { ...base, expect: { kind: 'body-free', op, lenient } };
    }
    case 'route':
      return {
        label: `${item.method} ${item.path.length > 60 ? `${item.path.slice(0, 60)}...` : item.path}`,
        path: item.path,
        method: item.method,
        body: '{"Name":"fz0","ID":"a","Opts":{}}',
        contentType: 'application/vnd.docker.plugins.v1.2+json',
        chunked: false,
        expect: { kind: '4xx' },
        changes: false,
      };
  }
}

interface Judged {
  problems: string[];
  /** The answer disagreed with the model: read the state back before going on. */
  resync: boolean;
}

export function parseBody(answer: RawResponse): Record<string, unknown> | undefined {
  try {
    const body: unknown = JSON.parse(answer.text);
    return body && typeof body === 'object' && !Array.isArray(body)
      ? (body as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Checks one answer against what was sent and the model; applies a change the model expects. */
export function judge(
  driver: DriverProcess,
  model: Model,
  sent: Sent,
  answer: RawResponse,
): Judged {
  const problems: string[] = [];
  const body = parseBody(answer);
  const { status } = answer;
  if (!body) problems.push(`answer is not a JSON object: ${answer.text.slice(0, 200)}`);
  const type = String(answer.headers['content-type'] ?? '');
  if (!/^application\/vnd\.docker\.plugins\.v1(\.\d+)?\+json\b/.test(type)) {
    problems.push(`Content-Type ${JSON.stringify(type)}`);
  }
  if (status >= 500) problems.push(`a ${status}`);
  if (status !== 200) {
    const err = body?.Err;
    if (typeof err !== 'string' || err === '') problems.push(`no Err in a ${status}`);
    else if (err.includes(driver.base)) problems.push(`Err names a host path: ${err}`);
  } else if (body && body.Err !== undefined && body.Err !== '') {
    problems.push(`a 200 with Err ${JSON.stringify(body.Err)}`);
  }
  const is4xx = status >= 400 && status < 500;
  const expect = sent.expect;
  let resync = false;
  const wrong = (what: string) => {
    problems.push(what);
    resync = true;
  };
  switch (expect.kind) {
    case '4xx':
      if (!is4xx) wrong(`expected a 4xx, got ${status}`);
      break;
    case 'body-free':
      if (status === 200 && body) checkAnswer(driver, model, expect.op, '', body, wrong);
      else if (!expect.lenient || !is4xx) wrong(`expected 200, got ${status}`);
      break;
    case 'exact':
    case 'maybe': {
      const prediction = model.predict(expect.op, expect.name, expect.id, expect.canon);
      if (prediction.statuses.includes(status)) {
        if (status === 200) {
          prediction.apply?.();
          if (body) checkAnswer(driver, model, expect.op, expect.name, body, wrong);
        }
      } else if (expect.kind === 'exact' || !is4xx) {
        wrong(`expected ${prediction.statuses.join(' or ')}, got ${status}`);
      }
      break;
    }
  }
  if (problems.length > 0 && body?.Err !== undefined) {
    problems.push(`Err: ${String(body.Err).slice(0, 200)}`);
  }
  return { problems, resync };
}

/** The content of a 200, by endpoint, against the model (which already holds its change). */
function checkAnswer(
  driver: DriverProcess,
  model: Model,
  op: Op,
  name: string,
  body: Record<string, unknown>,
  wrong: (what: string) => void,
): void {
  const mountpoint = (n: string) => mountpointOf(driver, n);
  switch (op) {
    case 'Mount':
    case 'Path':
      if (body.Mountpoint !== mountpoint(name)) wrong(`Mountpoint ${String(body.Mountpoint)}`);
      break;
    case 'Get': {
      const volume = body.Volume as
        { Name?: unknown; Mountpoint?: unknown; Status?: Partial<Status> } | undefined;
      const counts = model.volumes.get(name)?.counts ?? new Map<string, number>();
      if (volume?.Name !== name) wrong(`Get answered Name ${String(volume?.Name)}`);
      if (volume?.Mountpoint !== mountpoint(name)) {
        wrong(`Get answered Mountpoint ${String(volume?.Mountpoint)}`);
      }
      const active = volume?.Status?.activeMounts;
      if (active !== model.total(name)) {
        wrong(`activeMounts ${JSON.stringify(active)}, the model has ${model.total(name)}`);
      }
      const ids = volume?.Status?.mountIds;
      const got = ids && typeof ids === 'object' ? pairs(ids) : ids;
      const want = [...counts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        wrong(`mountIds ${JSON.stringify(got)}, the model has ${JSON.stringify(want)}`);
      }
      break;
    }
    case 'List': {
      const volumes = body.Volumes as { Name?: unknown; Mountpoint?: unknown }[] | undefined;
      const names = Array.isArray(volumes) ? volumes.map((v) => String(v.Name)).sort() : volumes;
      const want = [...model.volumes.keys()].sort();
      if (JSON.stringify(names) !== JSON.stringify(want)) {
        wrong(`List answered ${JSON.stringify(names)}, the model has ${JSON.stringify(want)}`);
      }
      for (const v of Array.isArray(volumes) ? volumes : []) {
        if (v.Mountpoint !== mountpoint(String(v.Name))) {
          wrong(`List answered Mountpoint ${String(v.Mountpoint)} for ${String(v.Name)}`);
        }
      }
      break;
    }
    case 'Capabilities':
      if ((body.Capabilities as { Scope?: unknown } | undefined)?.Scope !== 'local') {
        wrong(`Capabilities ${JSON.stringify(body)}`);
      }
      break;
    case 'Activate':
      if (!(body.Implements as unknown[] | undefined)?.includes('VolumeDriver')) {
        wrong(`Activate ${JSON.stringify(body)}`);
      }
      break;
    default:
      break;
  }
}

// ---------------------------------------------------------------------------------------------
