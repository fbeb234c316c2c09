/**
 * sharedprop-runtime: an OCI runtime that dockerd calls instead of runc. On `create` it gives
 * the container's mounts of sharedprop volumes rshared propagation in the bundle's config.json,
 * then becomes runc with the same arguments; every other command goes to runc untouched.
 * It never writes to stdout (runc's output is the caller's), and it never hands runc a spec it
 * did not fully write.
 *
 * Only a `create` that may hold a sharedprop volume comes here: the shell front (front.sh) hands
 * every other command straight to runc.
 */
import { writeSync } from 'node:fs';
import { parseRuncArgs, type RuncInvocation } from './argv.js';
import { configFile, loadConfig } from './config.js';
import { LOG_PREFIX, logDecision, rewriteBundleSpec } from './create.js';
import { execRunc } from './exec.js';
import { readText, runcOps } from './host.js';
import { findRunc } from './runc.js';

type Env = NodeJS.ProcessEnv;

/** One line on stderr, written synchronously. */
function say(message: string): void {
  writeSync(2, `${LOG_PREFIX}${message}\n`);
}

function fail(message: string): never {
  say(message);
  process.exit(1);
}

const errorMessage = (error: unknown) =>
  error instanceof Error ? error.message : `unexpected error: ${String(error)}`;

/** The runc for a command other than create: a broken configuration does not block it. */
async function passthroughRunc(env: Env): Promise<string> {
  let configured: string | undefined;
  if (!env.SHAREDPROP_RUNC) {
    try {
      const config = await loadConfig(configFile(env), readText);
      if (config.ignored) say(config.ignored);
      configured = config.runc;
    } catch (error) {
      say(`ignoring ${errorMessage(error)}`);
    }
  }
  return findRunc({ env, configured, self: process.execPath, ops: runcOps });
}

/** Rewrites the bundle's spec for create; returns the runc to run. */
async function prepareCreate(invocation: RuncInvocation, env: Env): Promise<string> {
  const config = await loadConfig(configFile(env), readText);
  const runc = await findRunc({
    env,
    configured: config.runc,
    self: process.execPath,
    ops: runcOps,
  });
  const decision = rewriteBundleSpec(invocation.bundle ?? process.cwd(), config.roots);
  if (config.ignored) decision.warnings.unshift(config.ignored);
  for (const problem of logDecision(invocation, config, decision, new Date())) say(problem);
  return runc;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2); // [bun, /$bunfs/root/..., ...arguments]
  const env = process.env;
  const invocation = parseRuncArgs(args, process.cwd());
  let runc: string;
  try {
    runc =
      invocation.subcommand === 'create'
        ? await prepareCreate(invocation, env)
        : await passthroughRunc(env);
  } catch (error) {
    return fail(errorMessage(error));
  }
  try {
    await execRunc(runc, args, env);
  } catch (error) {
    fail(`cannot run ${runc}: ${errorMessage(error)}`);
  }
}

// No top-level await: the executable is compiled to bytecode, which needs CommonJS output.
void main();
