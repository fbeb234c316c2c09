#!/usr/bin/env node
/** The `sharedprop` command line. */
import { Command } from 'commander';
import { createLogger } from './log.js';
import { serve } from './serve.js';
import { registerInspectCommands } from './commands/inspect.js';
import { registerLifecycleCommands } from './commands/lifecycle.js';
import { registerPluginCommands } from './commands/plugin.js';
import { registerRuntimeCommands } from './commands/runtime.js';
import { VERSION } from './system/version.js';
import { MOUNT_LAYER_ENV } from './system/mount-layer.js';

const program = new Command();
program
  .name('sharedprop')
  .description('Docker volume plugin that gives named volumes rshared mount propagation')
  .version(VERSION, '-V, --version', 'print the version of sharedprop')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the volume driver in the foreground (VolumeDriver protocol on a Unix socket)')
  .option(
    '--socket <path>',
    'Unix socket to listen on',
    process.env.SHAREDPROP_SOCKET ?? '/run/docker/plugins/sharedprop.sock',
  )
  .option(
    '--data-root <dir>',
    'directory that holds volume data and state',
    process.env.SHAREDPROP_DATA_ROOT ?? '/var/lib/sharedprop',
  )
  .option(
    '--mount-root <dir>',
    "directory for the volumes' shared mount points (default: <data-root>/mounts)",
    process.env.SHAREDPROP_MOUNT_ROOT,
  )
  .option(
    '--no-host-paths',
    "refuse -o path= (the managed plugin passes it: it does not see the host's directories)",
  )
  .option(
    '--private-data-root',
    "make the data root's mount private in the driver's namespace at start (the managed plugin passes it)",
  )
  .option(
    '--reserved-path <dir...>',
    "more host directories never adopted with -o path=, besides dockerd's and containerd's default state directories (e.g. a moved data-root)",
  )
  .option(
    '--engine-storage <dir...>',
    "more engine storage roots, besides /var/lib/docker/overlay2 and containerd's overlayfs snapshots: reap=on-unmount detaches an overlay only when its upper and work directories lie in one (e.g. <data-root>/overlay2 of a dockerd that moved its data-root); default: SHAREDPROP_ENGINE_STORAGE, colon-separated",
    process.env.SHAREDPROP_ENGINE_STORAGE?.split(':').filter((dir) => dir !== ''),
  )
  .option(
    '--tmpfs-max-size <size>',
    "the largest -o type=tmpfs volume, and the size of one created without -o size (e.g. 1g, 512m or 25%; at most the host's memory, which is the limit without it)",
    process.env.SHAREDPROP_TMPFS_MAX_SIZE || undefined,
  )
  .option(
    '--mount-layer <layer>',
    `how mounts are made: auto (system calls; one mount read by ID with statmount/listmount on Linux 6.8+, else mountinfo once per operation), mountinfo (system calls, always reading mountinfo), mount8 (mount(8) and umount(8) processes, as earlier releases); auto falls back to mount8, with a warning in the log, where the system calls cannot be made (no FFI, Linux before 5.12); default: ${MOUNT_LAYER_ENV}, else auto`,
    process.env[MOUNT_LAYER_ENV] || undefined,
  )
  .action(
    async (options: {
      socket: string;
      dataRoot: string;
      mountRoot?: string;
      hostPaths: boolean;
      privateDataRoot?: boolean;
      reservedPath?: string[];
      engineStorage?: string[];
      tmpfsMaxSize?: string;
      mountLayer?: string;
    }) => {
      const log = createLogger();
      try {
        await serve({ ...options, reservedPaths: options.reservedPath }, log);
      } catch (error) {
        log.error('cannot start', { error: (error as Error).message });
        log.on('finish', () => process.exit(1));
        log.end();
      }
    },
  );

registerInspectCommands(program);
registerLifecycleCommands(program);
registerPluginCommands(program);
registerRuntimeCommands(program);

await program.parseAsync(process.argv);
