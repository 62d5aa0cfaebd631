/**
 * Typed node identity values. Every MAC, IPv4 address, node name, boot action
 * and install state is parsed once at the edge into one of these; code past the
 * edge never re-validates. Parsers throw InvalidInputError with a one-line message.
 */
import { InvalidInputError } from './errors.js';

declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

/** MAC address, normalised to lowercase colon form `52:54:00:12:34:56`. */
export type Mac = Brand<string, 'Mac'>;
/** Dotted-quad IPv4 address without leading zeros, e.g. `10.1.255.254`. */
export type Ipv4 = Brand<string, 'Ipv4'>;
/** Node name: a DNS label (lowercase letters, digits, dashes; 1-63 chars, starts alphanumeric). */
export type NodeName = Brand<string, 'NodeName'>;
/** Appliance, image, profile and similar names: same rule as node names plus `_` and `.`, no path separators. */
export type SimpleName = Brand<string, 'SimpleName'>;

export const BOOT_ACTIONS = ['install', 'os', 'capture'] as const;
export type BootAction = (typeof BOOT_ACTIONS)[number];

export const INSTALL_STATES = ['profile', 'downloading', 'writing', 'verifying', 'post', 'done', 'failed'] as const;
export type InstallState = (typeof INSTALL_STATES)[number];

/**
 * Accepts `aa:bb:cc:dd:ee:ff`, `aa-bb-cc-dd-ee-ff`, `aabb.ccdd.eeff` and
 * `aabbccddeeff`, any case. Rejects everything else.
 */
export function parseMac(input: string): Mac {
  const s = String(input).trim().toLowerCase();
  let hex: string | undefined;
  if (/^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$/.test(s)) hex = s.replace(/[:-]/g, '');
  else if (/^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/.test(s)) hex = s.replace(/\./g, '');
  else if (/^[0-9a-f]{12}$/.test(s)) hex = s;
  if (!hex) throw new InvalidInputError(`malformed MAC address ${JSON.stringify(String(input).slice(0, 64))} (want aa:bb:cc:dd:ee:ff)`);
  return hex.match(/../g)!.join(':') as Mac;
}

export function tryParseMac(input: string): Mac | undefined {
  try {
    return parseMac(input);
  } catch {
    return undefined;
  }
}

/** Strict dotted-quad IPv4: four decimal octets 0-255, no leading zeros (they mean octal to some tools). */
export function parseIpv4(input: string): Ipv4 {
  const s = String(input).trim();
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  const ok = m && m.slice(1).every((o) => (o === '0' || !o.startsWith('0')) && Number(o) <= 255);
  if (!ok) throw new InvalidInputError(`malformed IPv4 address ${JSON.stringify(s.slice(0, 64))} (want a.b.c.d)`);
  return s as Ipv4;
}

export function tryParseIpv4(input: string): Ipv4 | undefined {
  try {
    return parseIpv4(input);
  } catch {
    return undefined;
  }
}

/** Strips the `::ffff:` prefix Node puts on IPv4 peers of dual-stack sockets. */
export function ipFromSocketAddress(addr: string | undefined): Ipv4 | undefined {
  if (!addr) return undefined;
  return tryParseIpv4(addr.startsWith('::ffff:') ? addr.slice(7) : addr);
}

export function ipv4ToInt(ip: Ipv4): number {
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

export function intToIpv4(n: number): Ipv4 {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new InvalidInputError(`IPv4 out of range: ${n}`);
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.') as Ipv4;
}

/** PXELINUX's name for an IP: eight uppercase hex digits, `10.18.1.2` -> `0A120102`. */
export function ipv4ToHex(ip: Ipv4): string {
  return ipv4ToInt(ip).toString(16).toUpperCase().padStart(8, '0');
}

/** PXELINUX's name for a MAC on Ethernet (ARP type 1): `01-aa-bb-cc-dd-ee-ff`. */
export function macToPxeName(mac: Mac): string {
  return `01-${mac.replace(/:/g, '-')}`;
}

export function parseNodeName(input: string): NodeName {
  const s = String(input).trim();
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(s) || s.endsWith('-')) {
    throw new InvalidInputError(`malformed node name ${JSON.stringify(s.slice(0, 70))} (lowercase letters, digits and dashes; starts with a letter or digit; at most 63)`);
  }
  return s as NodeName;
}

/** Names of appliances, images, profiles, templates: no path separators, no leading dot. */
export function parseSimpleName(input: string, what = 'name'): SimpleName {
  const s = String(input).trim();
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(s) || s.includes('..')) {
    throw new InvalidInputError(`malformed ${what} ${JSON.stringify(s.slice(0, 70))} (letters, digits, '.', '_', '-'; starts with a letter or digit; no '/' or '..')`);
  }
  return s as SimpleName;
}

/** Suffixes the image store uses for its own files; image names may not end in them. */
const IMAGE_STORE_SUFFIX = /\.(ksimg|torrent|json|lock)$|\.tmp-/;

/** An image name: a simple name that is not one of the image store's own file names. */
export function parseImageName(input: string): SimpleName {
  const name = parseSimpleName(input, 'image name');
  if (IMAGE_STORE_SUFFIX.test(name)) throw new InvalidInputError(`image name ${JSON.stringify(name)} must not end in .ksimg, .torrent, .json or .lock`);
  return name;
}

/** Highest image version number. */
export const MAX_IMAGE_VERSION = 999_999;

/**
 * A reference to an image: `NAME` (whatever version is current when it is
 * looked up) or `NAME@N` (exactly version N). `ref` is the canonical text.
 */
export interface ImageRef {
  name: SimpleName;
  version?: number;
  ref: string;
}

/** Parses `NAME` or `NAME@N` (N from 1 to MAX_IMAGE_VERSION, no leading zeros). */
export function parseImageRef(input: string): ImageRef {
  const s = String(input).trim();
  const at = s.lastIndexOf('@');
  if (at < 0) {
    const name = parseImageName(s);
    return { name, ref: name };
  }
  const name = parseImageName(s.slice(0, at));
  const v = s.slice(at + 1);
  if (!/^[1-9]\d{0,5}$/.test(v)) {
    throw new InvalidInputError(`malformed image version ${JSON.stringify(s.slice(0, 140))} (want NAME or NAME@N, N from 1 to ${MAX_IMAGE_VERSION})`);
  }
  const version = Number(v);
  return { name, version, ref: `${name}@${version}` };
}

/** True when `input` is a well-formed `NAME` or `NAME@N` (no exception). */
export function isImageRef(input: string): boolean {
  try {
    parseImageRef(input);
    return true;
  } catch {
    return false;
  }
}

export function parseBootAction(input: string): BootAction {
  const s = String(input).trim().toLowerCase();
  if (!(BOOT_ACTIONS as readonly string[]).includes(s)) {
    throw new InvalidInputError(`unknown boot action ${JSON.stringify(s.slice(0, 40))} (want ${BOOT_ACTIONS.join('|')})`);
  }
  return s as BootAction;
}

export function parseInstallState(input: string): InstallState {
  const s = String(input).trim().toLowerCase();
  if (!(INSTALL_STATES as readonly string[]).includes(s)) {
    throw new InvalidInputError(`unknown install state ${JSON.stringify(s.slice(0, 40))} (want ${INSTALL_STATES.join('|')})`);
  }
  return s as InstallState;
}

/** SMBIOS UUID as PXELINUX sends it: lowercase 8-4-4-4-12 hex. */
export function parseUuid(input: string): string {
  const s = String(input).trim().toLowerCase();
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(s)) {
    throw new InvalidInputError(`malformed UUID ${JSON.stringify(s.slice(0, 40))}`);
  }
  return s;
}

/** Attribute keys: dotted identifiers such as `ipmi.host` or `rootpw_crypted`. */
export function parseAttrKey(input: string): string {
  const s = String(input).trim();
  if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(s) || s.length > 128) {
    throw new InvalidInputError(`malformed attribute key ${JSON.stringify(s.slice(0, 70))} (identifier, dots allowed)`);
  }
  return s;
}

/** `k=v` as given on a command line or in a query. */
export function parseAttrAssignment(input: string): [string, string] {
  const i = input.indexOf('=');
  if (i <= 0) throw new InvalidInputError(`malformed attribute ${JSON.stringify(input.slice(0, 70))} (want key=value)`);
  return [parseAttrKey(input.slice(0, i)), input.slice(i + 1)];
}
