/** Small XML helpers for the OMF-compatible answers. */

/** Escapes text for element content and double-quoted attributes; drops characters XML 1.0 cannot carry. */
export function xmlEscape(s: string): string {
  return String(s)
    .replace(/[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** `<tag a="x" b="y"/>` with every value escaped; undefined values are left out. */
export function xmlElement(tag: string, attrs: Record<string, string | undefined>): string {
  const parts = Object.entries(attrs)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => ` ${k}="${xmlEscape(v)}"`);
  return `<${tag}${parts.join('')}/>`;
}
