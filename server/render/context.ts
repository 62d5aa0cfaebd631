/**
 * The one place a node's render context is built. Attribute precedence, lowest
 * first: global defaults (RenderEnv.globals) < the profile chain (base first;
 * the profile's `image` contributes `image.name`, `image.method`,
 * `image.target`) < the node's own attributes.
 */
import { InvalidInputError, NotFoundError } from '../../protocol/errors.js';
import { type Ipv4, intToIpv4, ipv4ToInt, parseIpv4 } from '../../protocol/node.js';
import type { NodeRecord } from '../inventory/types.js';
import { IMAGE_METHODS, type ResolvedProfile, type SectionRef } from './profiles.js';
import type { RenderEnv } from './types.js';

/** The node as templates see it: its record without attributes (merged into `attrs`), progress and times. */
export type NodeFacts = Pick<NodeRecord, 'name' | 'mac' | 'ip' | 'uuid' | 'appliance' | 'rack' | 'rank' | 'bootAction'>;

export interface FrontendFacts {
  /** e.g. `http://10.1.1.1:8080`. */
  url: string;
  /** `<url>/install/sbin/kickstart.cgi`. */
  kickstartUrl: string;
  /** `<url>/install/sbin/public/setPxeboot.cgi?action=os`. */
  setPxebootUrl: string;
  /** `<url>/install/sbin/boot.ipxe`: the iPXE script route (takes `?mac=`). */
  bootIpxeUrl: string;
  /** `<url>/install/boot/`: the TFTP root's static files over HTTP. */
  bootFilesUrl: string;
  tftpServer: string;
}

export interface ImageFacts {
  /** The exact version the store resolved (`NAME@N` for a versioned store), so the node fetches exactly what was rendered. */
  name: string;
  /** The version number, when the store names one. */
  version?: number;
  method: string;
  target: string;
  /** Attribute `image.verify`: the installer reads the target back and hashes it after writing. */
  verify: boolean;
  /** Present in kickstart contexts only (from the image store). */
  sha256: string;
  size: number;
}

/** What every node template sees. `node` and `profile` are null for unknown nodes (pxelinux default/discover). */
export interface RenderContext {
  node: NodeFacts | null;
  attrs: Record<string, string>;
  profile: { name: string; chain: string[]; description: string; packages: string[]; pre: SectionRef[]; post: SectionRef[] } | null;
  image: ImageFacts | null;
  frontend: FrontendFacts;
  pxe: RenderEnv['pxe'];
  /**
   * What iPXE scripts load: the installer kernel and initrd as
   * `/install/boot/` URLs (always HTTP), and the name the initrd is given
   * (`initrd=<initrdName>` on the kernel line, which the EFI stub needs).
   */
  ipxe: { kernel: string; initrd: string; initrdName: string };
  /**
   * `token`: the node's install session token for its kernel command line
   * (`kickswarm.session=`); '' unless this config goes to the node's own
   * registered IP while it installs or captures.
   */
  session: { token: string };
  /** `token`: the same token in a capture config (older templates name it so); '' otherwise. */
  capture: { token: string };
}

export function frontendFacts(env: RenderEnv): FrontendFacts {
  const url = env.frontendUrl.replace(/\/+$/, '');
  return {
    url,
    kickstartUrl: `${url}/install/sbin/kickstart.cgi`,
    setPxebootUrl: `${url}/install/sbin/public/setPxeboot.cgi?action=os`,
    bootIpxeUrl: `${url}/install/sbin/boot.ipxe`,
    bootFilesUrl: `${url}/install/boot/`,
    tftpServer: env.tftpServer,
  };
}

/** A TFTP-root path as its `/install/boot/` URL (a full URL stays as it is). */
export function bootFileUrl(env: RenderEnv, p: string): string {
  if (/^[a-z]+:\/\//i.test(p)) return p;
  return `${env.frontendUrl.replace(/\/+$/, '')}/install/boot/${p.replace(/^\/+/, '')}`;
}

/** Where loaders fetch the kernel and initrd: TFTP paths, or `/install/boot/` URLs with pxe.bootOverHttp. */
export function pxeFacts(env: RenderEnv): RenderEnv['pxe'] {
  if (!env.pxe.bootOverHttp) return env.pxe;
  return { ...env.pxe, kernel: bootFileUrl(env, env.pxe.kernel), initrd: bootFileUrl(env, env.pxe.initrd) };
}

/** The iPXE facts of the render context: kernel and initrd always over HTTP. */
export function ipxeFacts(env: RenderEnv): RenderContext['ipxe'] {
  const kernel = env.pxe.kernel ?? '';
  const initrd = env.pxe.initrd ?? '';
  const initrdName = initrd.split('/').filter(Boolean).at(-1) || 'initrd';
  return { kernel: bootFileUrl(env, kernel), initrd: bootFileUrl(env, initrd), initrdName: initrdName.replace(/[^A-Za-z0-9._-]/g, '_') };
}

/** The BIOS boot file DHCP hands out: lpxelinux.0 (HTTP-capable) for pxelinux.0 when booting over HTTP. */
export function biosLoader(env: RenderEnv): string {
  return env.pxe.bootOverHttp && env.pxe.biosLoader === 'pxelinux.0' ? 'lpxelinux.0' : env.pxe.biosLoader;
}

/** The DHCP boot files (DhcpContext.loaders) for the configured pxe.loader. */
export function dhcpLoaders(env: RenderEnv): DhcpContext['loaders'] {
  const ipxe = env.pxe.loader === 'ipxe';
  const arm64 = env.pxe.arm64Loader?.trim() || null;
  return {
    bios: ipxe ? (env.pxe.ipxeBiosLoader ?? 'undionly.kpxe') : biosLoader(env),
    efi: ipxe ? (env.pxe.ipxeEfiLoader ?? 'snponly.efi') : env.pxe.efiLoader,
    ipxe,
    // iPXE expands ${netX/mac} itself: the MAC of the interface it booted from.
    ipxeScript: `${frontendFacts(env).bootIpxeUrl}?mac=\${netX/mac}`,
    httpBoot: bootFileUrl(env, 'ipxe.efi'),
    arm64,
    arm64Http: arm64 ? bootFileUrl(env, arm64) : null,
  };
}

/** The merged attributes: globals < profile chain (incl. its image) < node. */
export function mergeAttributes(env: RenderEnv, profile: ResolvedProfile | null, node: NodeRecord | null): Record<string, string> {
  const fromProfile: Record<string, string> = { ...(profile?.attributes ?? {}) };
  if (profile?.image) {
    fromProfile['image.name'] = profile.image.name;
    fromProfile['image.method'] = profile.image.method;
    fromProfile['image.target'] = profile.image.target;
  }
  return { ...env.globals, ...fromProfile, ...(node?.attrs ?? {}) };
}

const VERIFY_WORDS: Record<string, boolean> = { yes: true, true: true, on: true, '1': true, no: false, false: false, off: false, '0': false, '': false };

/** The image named by the merged attributes, if any; a bad `image.method` or `image.verify` is an InvalidInputError. */
export function imageFromAttributes(attrs: Record<string, string>, who: string): { name: string; method: string; target: string; verify: boolean } | undefined {
  const name = attrs['image.name'];
  if (!name) return undefined;
  const method = attrs['image.method'] ?? 'torrent';
  if (!(IMAGE_METHODS as readonly string[]).includes(method)) {
    throw new InvalidInputError(`${who}: attribute image.method=${JSON.stringify(method)} (want ${IMAGE_METHODS.join('|')})`);
  }
  const verify = VERIFY_WORDS[(attrs['image.verify'] ?? '').trim().toLowerCase()];
  if (verify === undefined) throw new InvalidInputError(`${who}: attribute image.verify=${JSON.stringify(attrs['image.verify'])} (want yes or no)`);
  return { name, method, target: attrs['image.target'] ?? '/dev/sda', verify };
}

export interface BuildOptions {
  /** Look the image up in the store (kickstart); an unknown image is then a NotFoundError. */
  resolveImage: boolean;
  /** The session token this render may carry (boot configs for the node's own IP). */
  session?: string;
}

/** Builds the context for a node (or for an unknown node when `node` is null). */
export function buildContext(env: RenderEnv, node: NodeRecord | null, profile: ResolvedProfile | null, opts: BuildOptions): RenderContext {
  const attrs = mergeAttributes(env, profile, node);
  let image: ImageFacts | null = null;
  if (opts.resolveImage) {
    const wanted = imageFromAttributes(attrs, node ? `node ${node.name}` : 'profile');
    if (wanted) {
      const found = env.image?.(wanted.name);
      if (!found) {
        const user = profile?.image?.name === wanted.name ? `profile ${profile.name}` : `node ${node?.name ?? '?'}`;
        throw new NotFoundError(`image ${wanted.name} used by ${user} is not in the image store (add it with: kickswarm image add FILE --name ${wanted.name})`, { image: wanted.name });
      }
      image = { ...wanted, name: found.name, sha256: found.sha256, size: found.rawSize, ...(found.version !== undefined ? { version: found.version } : {}) };
    }
  }
  return {
    node: node
      ? {
          name: node.name,
          mac: node.mac,
          ip: node.ip,
          uuid: node.uuid,
          appliance: node.appliance,
          rack: node.rack,
          rank: node.rank,
          bootAction: node.bootAction,
        }
      : null,
    attrs,
    profile: profile
      ? {
          name: profile.name,
          chain: profile.chain,
          description: profile.description,
          packages: profile.packages,
          pre: profile.pre,
          post: profile.post,
        }
      : null,
    image,
    frontend: frontendFacts(env),
    pxe: pxeFacts(env),
    ipxe: ipxeFacts(env),
    session: { token: node && opts.session ? opts.session : '' },
    capture: { token: node && opts.session && node.bootAction === 'capture' ? opts.session : '' },
  };
}

export interface DhcpHost {
  name: string;
  mac: string;
  ip: string;
}

/** What the DHCP templates see. */
export interface DhcpContext {
  subnet: string;
  netmask: string;
  /** First and last usable address of the subnet. */
  rangeStart: string;
  rangeEnd: string;
  router: string | null;
  dnsServers: string[];
  domain: string;
  leaseSeconds: number;
  tftpServer: string;
  /**
   * `bios`, `efi`: the first-stage files by option 93 (PXELINUX or iPXE as
   * pxe.loader says); `ipxe`: true when iPXE clients (user-class `iPXE`) get
   * `ipxeScript`; `httpBoot`: the URL UEFI HTTP boot clients (arch 16) get;
   * `arm64`, `arm64Http`: the arm64 loader (arch 11) and its URL (arch 19),
   * null when none is configured.
   */
  loaders: { bios: string; efi: string; ipxe: boolean; ipxeScript: string; httpBoot: string; arm64: string | null; arm64Http: string | null };
  frontend: FrontendFacts;
  hosts: DhcpHost[];
}

function netmaskFromPrefix(prefix: number): Ipv4 {
  return intToIpv4(prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);
}

/**
 * The served subnet: `dhcp.subnet` (`a.b.c.d` with `dhcp.netmask`, or CIDR
 * `a.b.c.d/nn`), else the network around the TFTP server address.
 */
export function dhcpSubnet(env: RenderEnv): { subnet: Ipv4; netmask: Ipv4 } {
  let netmask: Ipv4;
  let base: Ipv4;
  const cfg = env.dhcp.subnet?.trim();
  try {
    if (cfg && cfg.includes('/')) {
      const [addr, bits] = cfg.split('/');
      const prefix = Number(bits);
      if (!Number.isInteger(prefix) || prefix < 8 || prefix > 30) throw new InvalidInputError(`prefix /${bits} (want /8 to /30)`);
      base = parseIpv4(addr!);
      netmask = netmaskFromPrefix(prefix);
    } else {
      netmask = parseIpv4(env.dhcp.netmask);
      base = parseIpv4(cfg || env.tftpServer);
    }
  } catch (e) {
    const field = cfg ? 'dhcp.subnet' : 'the TFTP server address (set dhcp.subnet)';
    throw new InvalidInputError(`DHCP subnet from ${field}: ${(e as Error).message}`);
  }
  const m = ipv4ToInt(netmask);
  if (!/^1*0*$/.test(m.toString(2).padStart(32, '0'))) throw new InvalidInputError(`dhcp.netmask ${netmask} is not a contiguous netmask`);
  return { subnet: intToIpv4((ipv4ToInt(base) & m) >>> 0), netmask };
}

export function buildDhcpContext(env: RenderEnv, nodes: NodeRecord[]): DhcpContext {
  const { subnet, netmask } = dhcpSubnet(env);
  const net = ipv4ToInt(subnet);
  const bcast = (net | (~ipv4ToInt(netmask) >>> 0)) >>> 0;
  return {
    subnet,
    netmask,
    rangeStart: intToIpv4(net + 1),
    rangeEnd: intToIpv4(bcast - 1),
    router: env.dhcp.router ?? null,
    dnsServers: env.dhcp.dnsServers,
    domain: env.dhcp.domain,
    leaseSeconds: env.dhcp.leaseSeconds,
    tftpServer: env.tftpServer,
    loaders: dhcpLoaders(env),
    frontend: frontendFacts(env),
    hosts: [...nodes].sort((a, b) => ipv4ToInt(a.ip) - ipv4ToInt(b.ip)).map((n) => ({ name: n.name, mac: n.mac, ip: n.ip })),
  };
}
