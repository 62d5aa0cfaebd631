/**
 * Which node attributes are secrets, and how they are hidden: the one rule
 * every view of the inventory uses (`node show|list|add --json`, the JSON API,
 * the dashboard, the logger, masked kickstarts and plan diffs).
 *
 * An attribute is secret when its key names a password, hash, token or key:
 * it contains `pass`, `pwd`, `secret`, `token`, `crypt`, `credential` or
 * `private`, ends in `key`, or has a word `pw` / `rootpw` (`.`, `_` and `-`
 * separate words), in any case. Examples: `bmc.password`, `ipmi.pass`,
 * `redfish.password`, `rootpw`, `root.crypted`, `api_token`,
 * `ssh.private`, `luks.key`. A secret's value is shown as MASK; the admin reads
 * it explicitly (`kickswarm node get NAME KEY`, `node show NAME
 * --show-secrets`, `GET /api/v1/nodes/NAME?secrets=show` with the admin role).
 * `node export` writes values as they are: it is the inventory's backup.
 */

const SECRET_KEY = /pass|pwd|secret|token|crypt|credential|private|key$|(?:^|[._-])(?:root)?pw(?:[._-]|$)/i;

/** What a hidden value is shown as. */
export const MASK = '********';

/** Whether the attribute `key` holds a secret. */
export function isSecretAttr(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** A copy of `attrs` with every secret value (however short, empty excepted) replaced by MASK. */
export function maskAttrs(attrs: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs)) out[k] = isSecretAttr(k) && v !== '' ? MASK : v;
  return out;
}

/** `node` with its attributes masked (every other field as it is). */
export function maskNode<T extends { attrs: Readonly<Record<string, string>> }>(node: T): T {
  return { ...node, attrs: maskAttrs(node.attrs) };
}

/**
 * `text` with the value of every secret attribute replaced by MASK wherever it
 * appears. Values shorter than 4 characters are left alone: replacing them
 * would garble unrelated text and hide nothing worth hiding.
 */
export function maskSecrets(text: string, attrs: Readonly<Record<string, string>>): string {
  const secrets = Object.entries(attrs)
    .filter(([k, v]) => isSecretAttr(k) && v.length >= 4)
    .map(([, v]) => v)
    .sort((a, b) => b.length - a.length);
  let out = text;
  for (const s of secrets) out = out.split(s).join(MASK);
  return out;
}
