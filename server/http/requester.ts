/**
 * Who is asking: the source IPv4 of the connection and the MACs anaconda
 * announces in `X-RHN-Provisioning-MAC-<n>` headers. Forwarding headers are
 * never trusted; the node routes act on the socket's peer address.
 */
import type { Context } from 'koa';
import type { IncomingHttpHeaders } from 'node:http';
import { InvalidInputError } from '../../protocol/errors.js';
import { type Ipv4, type Mac, ipFromSocketAddress, tryParseMac } from '../../protocol/node.js';
import { PROVISIONING_MAC_HEADER_PREFIX } from '../../protocol/api.js';

/** The peer's IPv4 (`::ffff:` stripped); undefined for IPv6 peers or a closed socket. */
export function remoteIp(ctx: Context): Ipv4 | undefined {
  return ipFromSocketAddress(ctx.req.socket.remoteAddress);
}

/** One announced interface: the header it came in and the MAC it names. */
export interface ProvisioningMac {
  header: string;
  index: number;
  device?: string;
  mac: Mac;
}

const HEADER_RE = new RegExp(`^${PROVISIONING_MAC_HEADER_PREFIX.toLowerCase()}(\\d{1,4})$`);

function parseValue(value: string): { device?: string; mac: Mac } | undefined {
  const parts = value.trim().split(/\s+/);
  if (parts.length === 1) {
    const mac = tryParseMac(parts[0]!);
    return mac && { mac };
  }
  if (parts.length === 2) {
    const mac = tryParseMac(parts[1]!);
    return mac && { device: parts[0]!.slice(0, 32), mac };
  }
  return undefined;
}

/**
 * The announced interfaces whose value parses (`eth0 52:54:00:12:34:56` or a
 * bare MAC), in header order n = 0, 1, .... Headers that do not parse (an
 * InfiniBand address, say) are skipped as long as one parses; when headers are
 * present and none parses, an InvalidInputError names the first. No headers: [].
 */
export function provisioningMacs(headers: IncomingHttpHeaders): ProvisioningMac[] {
  const found: { header: string; index: number; value: string }[] = [];
  for (const [name, raw] of Object.entries(headers)) {
    const m = HEADER_RE.exec(name);
    if (!m || raw === undefined) continue;
    const value = Array.isArray(raw) ? raw.join(',') : raw;
    found.push({ header: `${PROVISIONING_MAC_HEADER_PREFIX}${m[1]}`, index: Number(m[1]), value });
  }
  found.sort((a, b) => a.index - b.index);
  const parsed: ProvisioningMac[] = [];
  for (const f of found) {
    const p = parseValue(f.value);
    if (p) parsed.push({ header: f.header, index: f.index, ...p });
  }
  if (found.length > 0 && parsed.length === 0) {
    const first = found[0]!;
    throw new InvalidInputError(`malformed ${first.header} header ${JSON.stringify(first.value.slice(0, 80))} (want "<device> aa:bb:cc:dd:ee:ff")`, { header: first.header });
  }
  return parsed;
}
