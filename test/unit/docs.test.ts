/**
 * The README a newcomer reads top-down, and docs/ behind it: short, the quick start near the top,
 * every relative link and #anchor resolving, every document reachable from the README, and the
 * blocks the end-to-end tier runs as written still there.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { anchors, githubSlug, isExternal, links } from '../support/markdown-links.js';
import { composeFile, quickStartCommands } from '../support/readme-blocks.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const README = path.join(REPO, 'README.md');
const DOCS = path.join(REPO, 'docs');
const MAX_README_LINES = 300;
const QUICK_START_BY_LINE = 60;
const MAX_TABLE_CELL = 200;

const read = (file: string) => readFileSync(file, 'utf8');
const docFiles = () =>
  readdirSync(DOCS)
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => path.join(DOCS, name));
const markdownFiles = () => [README, ...docFiles()];
const relative = (file: string) => path.relative(REPO, file);

/**
 * Every relative link of `file` that does not resolve: a file that does not exist, or an #anchor
 * that no heading of the target has.
 */
function brokenLinks(file: string, text: string, readTarget = read): string[] {
  const broken: string[] = [];
  for (const { line, target } of links(text)) {
    if (isExternal(target)) continue;
    const [pathPart = '', anchor] = target.split('#', 2);
    const resolved = pathPart === '' ? file : path.resolve(path.dirname(file), pathPart);
    const where = `${relative(file)}:${line}: ${target}`;
    if (resolved !== file && !existsSync(resolved)) {
      broken.push(`${where}: no such file`);
      continue;
    }
    if (anchor === undefined) continue;
    if (resolved !== file && !statSync(resolved).isFile()) {
      broken.push(`${where}: an anchor into a directory`);
    } else if (!anchors(resolved === file ? text : readTarget(resolved)).has(anchor)) {
      broken.push(`${where}: no heading with that anchor`);
    }
  }
  return broken;
}

describe('the link checker', () => {
  it("makes GitHub's slugs: code, punctuation and emphasis dropped, spaces made hyphens", () => {
    expect(githubSlug('Quick start')).toBe('quick-start');
    expect(githubSlug("Or adopt the host's `/run/netns`")).toBe('or-adopt-the-hosts-runnetns');
    expect(githubSlug('Kolla: neutron agents sharing `/run/netns`')).toBe(
      'kolla-neutron-agents-sharing-runnetns',
    );
    expect(githubSlug('`sharedprop ls`, `doctor` and `prune`: exit codes')).toBe(
      'sharedprop-ls-doctor-and-prune-exit-codes',
    );
    expect(githubSlug('**Bold** and a [link](x.md)')).toBe('bold-and-a-link');
    expect([...anchors('# A\n## A\n```\n# not a heading\n```\n## A\n')]).toEqual([
      'a',
      'a-1',
      'a-2',
    ]);
  });

  it('finds the links outside code only', () => {
    const text = 'see [a](a.md) and `[b](b.md)`\n```\n[c](c.md)\n```\n[d](https://x/y) [e](#e)\n';
    expect(links(text).map((l) => l.target)).toEqual(['a.md', 'https://x/y', '#e']);
  });

  it('reports a missing file, a missing anchor and a missing heading in the same file', () => {
    const text =
      '# Top\n[ok](#top) [ok](README.md#sharedprop) [ok](https://example.invalid/#x)\n' +
      '[gone](docs/nowhere.md) [bad](README.md#no-such-heading) [self](#nowhere)\n';
    expect(brokenLinks(path.join(REPO, 'page.md'), text)).toEqual([
      'page.md:3: docs/nowhere.md: no such file',
      'page.md:3: README.md#no-such-heading: no heading with that anchor',
      'page.md:3: #nowhere: no heading with that anchor',
    ]);
  });
});

describe('README.md', () => {
  const readme = read(README);
  const lines = readme.split('\n');

  it(`is at most ${MAX_README_LINES} lines`, () => {
    expect(readme.trimEnd().split('\n').length).toBeLessThanOrEqual(MAX_README_LINES);
  });

  it(`has its quick start within the first ${QUICK_START_BY_LINE} lines`, () => {
    const at = lines.indexOf('## Quick start') + 1;
    expect(at).toBeGreaterThan(0);
    expect(at).toBeLessThanOrEqual(QUICK_START_BY_LINE);
  });

  it('links every document in docs/', () => {
    const linked = new Set(
      links(readme)
        .filter((l) => !isExternal(l.target))
        .map((l) => path.resolve(REPO, l.target.split('#')[0] ?? '')),
    );
    expect(
      docFiles()
        .filter((file) => !linked.has(file))
        .map(relative),
    ).toEqual([]);
  });

  it('says `sharedprop ...`, never `node dist/cli.js ...`: make install puts it on PATH', () => {
    expect(lines.filter((line) => line.includes('node dist/cli.js'))).toEqual([]);
  });

  it('still has the blocks the end-to-end tier runs as written', () => {
    const commands = quickStartCommands(readme);
    expect(commands[0]).toMatch(/^make install\b/);
    expect(commands.filter((c) => c.startsWith('sharedprop ls'))).toHaveLength(2);
    expect(commands.some((c) => c.startsWith('docker run --rm'))).toBe(true);
    const compose = composeFile(readme);
    expect(compose).toMatch(/^ +runtime: sharedprop\b/m);
    expect(compose).toMatch(/^ +driver: sharedprop$/m);
  });
});

describe('README.md and docs/', () => {
  it('every relative link resolves to a file, and every #anchor to a heading there', () => {
    expect(markdownFiles().flatMap((file) => brokenLinks(file, read(file)))).toEqual([]);
  });

  it(`no table cell is longer than ${MAX_TABLE_CELL} characters (longer ones are prose)`, () => {
    const long = markdownFiles().flatMap((file) =>
      read(file)
        .split('\n')
        .flatMap((line, i) =>
          line.startsWith('|')
            ? line
                .split('|')
                .map((cell) => cell.trim())
                .filter((cell) => cell.length > MAX_TABLE_CELL && !/^-+$/.test(cell))
                .map((cell) => `${relative(file)}:${i + 1}: ${cell.slice(0, 60)}...`)
            : [],
        ),
    );
    expect(long).toEqual([]);
  });
});
