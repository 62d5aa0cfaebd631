/**
 * What is kept of a kickstart when a node is served it: its SHA-256 and its
 * text with secrets masked (../inventory/secret-attrs.ts: the value of every
 * secret attribute, wherever it appears in the text).
 */
import crypto from 'node:crypto';
import type { NodeRecord } from '../inventory/types.js';
import { maskSecrets } from '../inventory/secret-attrs.js';

export { MASK, maskSecrets } from '../inventory/secret-attrs.js';

export function kickstartHash(text: string): string {
  return crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The record to store for `node` served `text` (hash of the real text, masked copy). */
export function servedRecord(node: NodeRecord, text: string, attrs: Record<string, string>): { sha256: string; text: string } {
  void node;
  return { sha256: kickstartHash(text), text: maskSecrets(text, attrs) };
}
