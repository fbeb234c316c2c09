/**
 * Just enough Markdown for checking links the way GitHub renders them: headings and their
 * anchors (GitHub's slugs), and the inline links outside code.
 */

/** The lines of `text` outside fenced code blocks, with their 1-based line numbers. */
export function proseLines(text: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  let fence: string | undefined;
  text.split('\n').forEach((content, i) => {
    const marker = /^\s*(`{3,}|~{3,})/.exec(content)?.[1];
    if (marker && (fence === undefined || marker.startsWith(fence))) {
      fence = fence === undefined ? marker : undefined;
      return;
    }
    if (fence === undefined) out.push({ line: i + 1, text: content });
  });
  return out;
}

/** A heading's text as GitHub renders it: code, links and emphasis reduced to their words. */
function renderedText(heading: string): string {
  return heading
    .replace(/`([^`]*)`/g, '$1')
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\*\*|\*/g, '')
    .trim();
}

/** GitHub's anchor for a heading text: lower case, punctuation dropped, spaces made hyphens. */
export function githubSlug(heading: string): string {
  return renderedText(heading)
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor of a document, duplicates numbered as GitHub numbers them (`x`, `x-1`, ...). */
export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const { text: line } of proseLines(text)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const slug = githubSlug(heading);
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    out.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return out;
}

export interface Link {
  line: number;
  target: string;
}

/** The inline links (`[text](target)`) outside code blocks and code spans. */
export function links(text: string): Link[] {
  const out: Link[] = [];
  for (const { line, text: content } of proseLines(text)) {
    const prose = content.replace(/`[^`]*`/g, '``');
    for (const match of prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      out.push({ line, target: match[1] as string });
    }
  }
  return out;
}

/** Whether a link leaves the repository (a URL with a scheme). */
export function isExternal(target: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(target);
}
