// @ts-check
/**
 * A Stryker ignorer (`ignorers: ['log-calls']` in stryker.config.mjs): no mutant is made inside a
 * call to the logger (`log.warn(...)`, `this.log.error(...)`, `ctx.log.info(...)`). Their text
 * and fields are what an operator reads, not what the driver does: mutating them made about a
 * tenth of all mutants, each a run of the unit tier that can only tell whether a message was
 * spelled the same. What a log line stands for is still tested where it is a promise (start-up
 * leaving a foreign mount alone and saying so, for example) through what the driver does.
 */
import { declareValuePlugin, PluginKind } from '@stryker-mutator/api/plugin';

const LEVELS = new Set(['debug', 'info', 'warn', 'error']);

/** `log`, `this.log`, `ctx.log`, `this.deps.log`: the logger, under whatever holds it. */
function isLogger(node) {
  if (node.type === 'Identifier') return node.name === 'log';
  return (
    node.type === 'MemberExpression' &&
    !node.computed &&
    node.property.type === 'Identifier' &&
    node.property.name === 'log'
  );
}

/** `log.warn(...)` and the like. */
function isLogCall(node) {
  if (node?.type !== 'CallExpression' || node.callee.type !== 'MemberExpression') return false;
  const { callee } = node;
  if (callee.computed || callee.property.type !== 'Identifier') return false;
  return LEVELS.has(callee.property.name) && isLogger(callee.object);
}

/** A block whose one statement is a log call (`catch (error) { log.error(...) }`). */
function blockOnlyLogs(block) {
  return (
    block.type === 'BlockStatement' &&
    block.body.length === 1 &&
    block.body[0].type === 'ExpressionStatement' &&
    isLogCall(block.body[0].expression)
  );
}

/** `(error) => log.warn(...)`, a function or a block that only logs: its one job is to log. */
function onlyLogs(node) {
  if (node.type === 'BlockStatement') return blockOnlyLogs(node);
  if (node.type !== 'ArrowFunctionExpression' && node.type !== 'FunctionExpression') return false;
  return node.body.type === 'BlockStatement' ? blockOnlyLogs(node.body) : isLogCall(node.body);
}

export const strykerPlugins = [
  declareValuePlugin(PluginKind.Ignore, 'log-calls', {
    /** @param {any} path */
    shouldIgnore(path) {
      if (isLogCall(path.node)) {
        return 'a log call: its text is for operators, not behaviour (scripts/stryker-log-ignorer.mjs)';
      }
      if (onlyLogs(path.node)) {
        return 'a handler that only logs (scripts/stryker-log-ignorer.mjs)';
      }
      return undefined;
    },
  }),
];
