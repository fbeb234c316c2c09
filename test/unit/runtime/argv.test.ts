import { parseRuncArgs } from '../../../src/runtime/argv.js';

const CWD = '/run/containerd/io.containerd.runtime.v2.task/moby/abc';

describe('finding the subcommand', () => {
  it.each([
    [['create', '--bundle', '/b', 'id'], 'create'],
    [['--root', '/var/run/docker/runtime-runc/moby', 'create', 'id'], 'create'],
    [['--root=/r', '--log', '/l.json', '--log-format', 'json', 'start', 'id'], 'start'],
    [['--debug', '--systemd-cgroup', 'kill', 'id', '9'], 'kill'],
    [['--criu', 'criu', '--rootless', 'auto', 'delete', '--force', 'id'], 'delete'],
    [['--log-format=json', '--rootless=false', 'state', 'id'], 'state'],
    [['-root', '/r', 'features'], 'features'],
    [['--version'], undefined],
    [[], undefined],
  ])('%j -> %s', (args, subcommand) => {
    expect(parseRuncArgs(args, CWD).subcommand).toBe(subcommand);
  });

  it('does not take the value of a global flag for the subcommand', () => {
    // `--root create` names a state directory called "create"; the subcommand is `state`.
    expect(parseRuncArgs(['--root', 'create', 'state', 'id'], CWD).subcommand).toBe('state');
    expect(parseRuncArgs(['--log', 'create', 'delete', 'id'], CWD).subcommand).toBe('delete');
  });

  it('does not mistake an argument of another subcommand for create', () => {
    const parsed = parseRuncArgs(['exec', '--process', '/p.json', 'create'], CWD);
    expect(parsed.subcommand).toBe('exec');
    expect(parsed.bundle).toBeUndefined();
  });
});

describe('finding the bundle of create', () => {
  it.each([
    [['create', '--bundle', '/x/bundle', 'id'], '/x/bundle'],
    [['create', '--bundle=/x/bundle', 'id'], '/x/bundle'],
    [['create', '-b', '/x/bundle', 'id'], '/x/bundle'],
    [['create', '-b=/x/bundle', 'id'], '/x/bundle'],
    [['create', '-bundle', '/x/bundle', 'id'], '/x/bundle'],
    [['create', 'id', '--bundle', '/x/bundle'], '/x/bundle'],
    [['create', '--bundle', '/first', '--bundle', '/last', 'id'], '/last'],
  ])('%j -> %s', (args, bundle) => {
    expect(parseRuncArgs(args, CWD).bundle).toBe(bundle);
  });

  it('finds a bundle directory literally named create', () => {
    expect(parseRuncArgs(['create', '--bundle', 'create', 'id'], CWD)).toMatchObject({
      subcommand: 'create',
      bundle: `${CWD}/create`,
    });
    expect(
      parseRuncArgs(['--root', '/r', 'create', '-b', '/srv/create', 'create'], CWD),
    ).toMatchObject({ subcommand: 'create', bundle: '/srv/create' });
  });

  it('resolves a relative bundle against the current directory', () => {
    expect(parseRuncArgs(['create', '-b', '../other', 'id'], '/a/b').bundle).toBe('/a/other');
  });

  it('uses the current directory when no bundle is given (or an empty one)', () => {
    expect(parseRuncArgs(['create', 'id'], CWD).bundle).toBe(CWD);
    expect(parseRuncArgs(['create', '--bundle=', 'id'], CWD).bundle).toBe(CWD);
  });

  it('parses what containerd-shim-runc-v2 passes', () => {
    const args = [
      '--root',
      '/var/run/docker/runtime-runc/moby',
      '--log',
      `${CWD}/log.json`,
      '--log-format',
      'json',
      '--systemd-cgroup',
      'create',
      '--bundle',
      CWD,
      '--pid-file',
      `${CWD}/init.pid`,
      'abc',
    ];
    expect(parseRuncArgs(args, '/')).toEqual({
      subcommand: 'create',
      bundle: CWD,
      logFile: `${CWD}/log.json`,
      logFormat: 'json',
    });
  });

  it('does not read the value of another create flag as the bundle', () => {
    const args = ['create', '--pid-file', '-b', '--console-socket', '--bundle', 'id'];
    expect(parseRuncArgs(args, CWD).bundle).toBe(CWD);
  });

  it('stops reading flags at --', () => {
    expect(parseRuncArgs(['create', '--', '--bundle', '/x'], CWD).bundle).toBe(CWD);
  });
});

describe("runc's log", () => {
  it('is absent, with the text format, by default', () => {
    expect(parseRuncArgs(['create', 'id'], CWD)).toMatchObject({
      logFile: undefined,
      logFormat: 'text',
    });
  });

  it('is resolved against the current directory', () => {
    expect(parseRuncArgs(['--log=log.json', 'create', 'id'], '/w').logFile).toBe('/w/log.json');
  });
});
