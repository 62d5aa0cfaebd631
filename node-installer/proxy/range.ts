/**
 * HTTP `Range` for one image of known length (RFC 9110 §14): a single byte
 * range is honoured; a missing, malformed or multi-range header means the whole
 * image; a range that starts past the end is unsatisfiable (416).
 */
export type ByteRange = { kind: 'whole'; start: number; end: number } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

export function parseRange(header: string | undefined, length: number): ByteRange {
  const whole: ByteRange = { kind: 'whole', start: 0, end: length - 1 };
  if (!header) return whole;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return whole;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || length === 0) return { kind: 'unsatisfiable' };
    return { kind: 'partial', start: Math.max(0, length - suffix), end: length - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? length - 1 : Math.min(Number(m[2]), length - 1);
  if (!Number.isSafeInteger(start) || Number.isNaN(end)) return whole;
  if (m[2] !== '' && Number(m[2]) < start) return whole;
  if (start >= length) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end };
}
