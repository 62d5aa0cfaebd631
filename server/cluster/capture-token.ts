/**
 * Per-node capture tokens. The frontend puts `captureToken(secret, node)` on the
 * kernel command line of the node's capture boot config
 * (`kickswarm.capture_token=`); the capture environment sends it back as
 * `Authorization: Bearer <token>` with its upload. A token is bound to one node
 * name and is valid for as long as the secret is.
 */
import crypto from 'node:crypto';

/** HMAC-SHA256(secret, `capture:<nodeName>`), base64url (43 characters). */
export function captureToken(secret: string, nodeName: string): string {
  return crypto.createHmac('sha256', secret).update(`capture:${nodeName}`, 'utf8').digest('base64url');
}

/**
 * True when `token` is `nodeName`'s capture token under `secret`. The
 * comparison takes the same time wherever the strings differ and whatever their
 * lengths; an empty secret accepts nothing.
 */
export function verifyCaptureToken(secret: string, nodeName: string, token: string): boolean {
  if (secret === '') return false;
  const want = crypto.createHash('sha256').update(captureToken(secret, nodeName), 'utf8').digest();
  const got = crypto.createHash('sha256').update(token, 'utf8').digest();
  return crypto.timingSafeEqual(want, got);
}

/** What the capture route needs: checks a node's presented token. */
export interface CaptureTokenVerifier {
  verify(nodeName: string, token: string): boolean;
}

/** A verifier for tokens made with `secret`. */
export function captureTokenVerifier(secret: string): CaptureTokenVerifier {
  return { verify: (nodeName, token) => verifyCaptureToken(secret, nodeName, token) };
}
