/**
 * The names PXELINUX asks for under `pxelinux.cfg/`, in its own order:
 * `<uuid>`, `01-<mac>`, the IP as 8 uppercase hex digits, that hex with 1..7
 * trailing digits dropped, then `default`. Pure: no I/O.
 */
import { type Ipv4, type Mac, ipv4ToHex, macToPxeName, parseIpv4, parseMac } from '../../protocol/node.js';

/** The directory (relative to the TFTP root) whose files are PXELINUX configs. */
export const PXE_CFG_DIR = 'pxelinux.cfg';

/**
 * One requested name, classified. `name` is the canonical spelling (lowercase
 * UUID and MAC, uppercase hex); static files are looked up by it.
 */
export type PxeConfigName =
  | { kind: 'uuid'; name: string; uuid: string }
  | { kind: 'mac'; name: string; mac: Mac }
  | { kind: 'ip'; name: string; ip: Ipv4 }
  /** 1..7 leading hex digits of an IP: a subnet-wide config the admin may provide. */
  | { kind: 'ipPrefix'; name: string; digits: number }
  | { kind: 'default'; name: 'default' }
  /** Anything PXELINUX never asks for. */
  | { kind: 'invalid'; name: string; reason: string };

const UUID_RE = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const MAC_RE = /^01-[0-9a-fA-F]{2}(-[0-9a-fA-F]{2}){5}$/;
const HEX_IP_RE = /^[0-9A-F]{8}$/;
const HEX_PREFIX_RE = /^[0-9A-F]{1,7}$/;

/**
 * Classifies the part of a request after `pxelinux.cfg/`. UUIDs and MACs are
 * accepted in either case and normalised to lowercase; hex IPs and prefixes
 * must be uppercase, as PXELINUX sends them. Never throws.
 */
export function classifyPxeConfigName(input: string): PxeConfigName {
  const raw = String(input);
  if (raw === 'default') return { kind: 'default', name: 'default' };
  if (UUID_RE.test(raw)) {
    const uuid = raw.toLowerCase();
    return { kind: 'uuid', name: uuid, uuid };
  }
  if (MAC_RE.test(raw)) {
    const mac = parseMac(raw.slice(3));
    return { kind: 'mac', name: macToPxeName(mac), mac };
  }
  if (HEX_IP_RE.test(raw)) {
    const n = Number.parseInt(raw, 16);
    const ip = parseIpv4([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'));
    return { kind: 'ip', name: raw, ip };
  }
  if (HEX_PREFIX_RE.test(raw)) return { kind: 'ipPrefix', name: raw, digits: raw.length };
  return { kind: 'invalid', name: raw.slice(0, 128), reason: invalidReason(raw) };
}

function invalidReason(raw: string): string {
  if (raw === '') return 'empty name';
  if (raw.includes('/')) return 'names under pxelinux.cfg/ have no subdirectories';
  if (/^[0-9a-fA-F]{1,8}$/.test(raw)) return 'hex IP names are uppercase';
  if (/^[0-9a-fA-F]{2}-/.test(raw)) return 'not 01-<ethernet mac>';
  return 'not a name PXELINUX asks for';
}

/** What PXELINUX knows about itself when it starts looking for a config. */
export interface PxeIdentity {
  mac: Mac;
  ip: Ipv4;
  /** SMBIOS UUID, when the firmware reports one. */
  uuid?: string;
}

/**
 * The names PXELINUX tries, first to last, e.g. for 10.18.1.2:
 * `[uuid,] 01-aa-bb-…, 0A120102, 0A12010, …, 0, default`.
 */
export function pxeLookupOrder(id: PxeIdentity): string[] {
  const out: string[] = [];
  if (id.uuid) out.push(id.uuid.toLowerCase());
  out.push(macToPxeName(id.mac));
  const hex = ipv4ToHex(id.ip);
  for (let len = 8; len >= 1; len--) out.push(hex.slice(0, len));
  out.push('default');
  return out;
}
