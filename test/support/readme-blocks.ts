/**
 * The README's code blocks that tests run as written: the quick start (e2e/readme-promises) and
 * the compose file (e2e/runtime). One place, so that the unit tier (test/unit/docs.test.ts) can
 * check that the blocks the end-to-end tier needs are still there.
 */

/** The first ```LANG block after the heading line `heading` (e.g. `## Quick start`). */
export function blockUnder(readme: string, heading: string, lang: string): string {
  const section = readme.split(`\n${heading}\n`)[1] ?? '';
  const block = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(section)?.[1];
  if (!block) throw new Error(`README.md: no ${lang} block under "${heading}"`);
  return block;
}

/**
 * The quick start's commands: the first sh block under "## Quick start", one command per line
 * once continuations are joined; comments and blank lines dropped.
 */
export function quickStartCommands(readme: string): string[] {
  return blockUnder(readme, '## Quick start', 'sh')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

/** The compose file of the README's "Compose" section, exactly as written there. */
export function composeFile(readme: string): string {
  return blockUnder(readme, '### Compose', 'yaml');
}
