import {
  addRuntime,
  DaemonJsonError,
  formatDaemonJson,
  parseDaemonJson,
  removeRuntime,
} from '../../../src/install/daemon-json.js';

const BIN = '/usr/local/bin/sharedprop-runtime';

/** A daemon.json as found on a Kolla host: logging, storage and another runtime. */
const EXISTING = {
  'log-driver': 'json-file',
  'log-opts': { 'max-size': '50m', 'max-file': '5' },
  'storage-driver': 'overlay2',
  'live-restore': true,
  runtimes: { nvidia: { path: 'nvidia-container-runtime', runtimeArgs: [] } },
  'default-ulimits': { nofile: { Name: 'nofile', Hard: 1048576, Soft: 1048576 } },
};

describe('registering the runtime in daemon.json', () => {
  it('adds runtimes.sharedprop and keeps every other key', () => {
    const { config, changed } = addRuntime(EXISTING, BIN);
    expect(changed).toBe(true);
    expect(config).toEqual({
      ...EXISTING,
      runtimes: { nvidia: EXISTING.runtimes.nvidia, sharedprop: { path: BIN } },
    });
    expect(Object.keys(config)).toEqual(Object.keys(EXISTING));
  });

  it('creates runtimes when there is none, in an empty configuration too', () => {
    expect(addRuntime({ debug: true }, BIN).config).toEqual({
      debug: true,
      runtimes: { sharedprop: { path: BIN } },
    });
    expect(addRuntime(parseDaemonJson(' \n', 'f'), BIN).config).toEqual({
      runtimes: { sharedprop: { path: BIN } },
    });
  });

  it('changes nothing when it is already registered with that path', () => {
    const once = addRuntime(EXISTING, BIN).config;
    const twice = addRuntime(once, BIN);
    expect(twice.changed).toBe(false);
    expect(twice.config).toBe(once);
  });

  it('updates the path of an existing entry, keeping its runtimeArgs', () => {
    const config = { runtimes: { sharedprop: { path: '/old/path', runtimeArgs: ['--debug'] } } };
    expect(addRuntime(config, BIN)).toEqual({
      config: { runtimes: { sharedprop: { path: BIN, runtimeArgs: ['--debug'] } } },
      changed: true,
    });
  });

  it('does not modify its input', () => {
    const input = structuredClone(EXISTING);
    addRuntime(input, BIN);
    expect(input).toEqual(EXISTING);
  });

  it.each([
    [{ runtimes: [] }, /"runtimes" in daemon.json is not an object/],
    [{ runtimes: { sharedprop: 'x' } }, /"runtimes.sharedprop" in daemon.json is not an object/],
  ])('refuses %j', (config, message) => {
    expect(() => addRuntime(config, BIN)).toThrow(DaemonJsonError);
    expect(() => addRuntime(config, BIN)).toThrow(message);
  });
});

describe('unregistering the runtime', () => {
  it('removes only runtimes.sharedprop: add then remove gives the original back', () => {
    const added = addRuntime(EXISTING, BIN).config;
    const { config, changed } = removeRuntime(added);
    expect(changed).toBe(true);
    expect(config).toEqual(EXISTING);
  });

  it('leaves "runtimes": {} when ours was the only one (a reload then drops it)', () => {
    const added = addRuntime({ debug: false }, BIN).config;
    expect(removeRuntime(added)).toEqual({ config: { debug: false, runtimes: {} }, changed: true });
  });

  it('changes nothing when it is not registered', () => {
    expect(removeRuntime(EXISTING)).toEqual({ config: EXISTING, changed: false });
    expect(removeRuntime({})).toEqual({ config: {}, changed: false });
  });

  it('refuses while sharedprop is the default runtime (dockerd would not start)', () => {
    const config = { 'default-runtime': 'sharedprop', runtimes: { sharedprop: { path: BIN } } };
    expect(() => removeRuntime(config)).toThrow(/default-runtime/);
  });
});

describe('daemon.json text', () => {
  it('is parsed strictly and written with two-space indentation', () => {
    expect(parseDaemonJson('{"debug":true}', 'f')).toEqual({ debug: true });
    expect(formatDaemonJson({ debug: true, runtimes: {} })).toBe(
      '{\n  "debug": true,\n  "runtimes": {}\n}\n',
    );
    expect(() => parseDaemonJson('{"debug":', '/etc/docker/daemon.json')).toThrow(
      /^\/etc\/docker\/daemon.json is not valid JSON/,
    );
    expect(() => parseDaemonJson('[]', 'f')).toThrow('f is not a JSON object');
  });
});
