/**
 * What is kept of a kickstart when a node is served it: its SHA-256 and its
 * text with secrets masked, so a later reinstall plan can say whether (and
 * how) the node's kickstart changed. A secret is the value of any attribute
 * whose name says so (password, secret, token, crypt, key), at least 4
 * characters long, wherever it appears in the text.
 */
import crypto from 'node:crypto';
import type { NodeRecord } from '../inventory/types.js';

const SECRET_KEY = /pass|secret|token|crypt|key$|private/i;
export const MASK = '********';

/** `text` with every secret attribute value replaced by MASK. */
export function maskSecrets(text: string, attrs: Record<string, string>): string {
  const secrets = Object.entries(attrs)
    .filter(([k, v]) => SECRET_KEY.test(k) && v.length >= 4)
    .map(([, v]) => v)
    .sort((a, b) => b.length - a.length);
  let out = text;
  for (const s of secrets) out = out.split(s).join(MASK);
  return out;
}

export function kickstartHash(text: string): string {
  return crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The record to store for `node` served `text` (hash of the real text, masked copy). */
export function servedRecord(node: NodeRecord, text: string, attrs: Record<string, string>): { sha256: string; text: string } {
  void node;
  return { sha256: kickstartHash(text), text: maskSecrets(text, attrs) };
}
