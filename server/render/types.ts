/**
 * What the rest of the frontend needs from profiles and templates. The
 * implementation (ProfileService) loads `profiles/*.yaml` and `templates/**`
 * from the data dir, watches them, and keeps serving the last good set when an
 * edit breaks; every render goes through one `buildContext()`.
 */
import type { BootAction } from '../../protocol/node.js';
import type { SecretFile } from '../../protocol/session.js';
import type { NodeRecord } from '../inventory/types.js';

/** Facts about the frontend that templates may use. */
export interface RenderEnv {
  /** e.g. `http://10.1.1.1:8080` (no trailing slash). */
  frontendUrl: string;
  /** Address nodes use for TFTP (DHCP next-server). */
  tftpServer: string;
  pxe: {
    kernel: string;
    initrd: string;
    append: string;
    biosLoader: string;
    efiLoader: string;
    bootOverHttp?: boolean;
    /** The first-stage loader DHCP hands out (default pxelinux). */
    loader?: 'pxelinux' | 'ipxe';
    /** iPXE's first stage for BIOS and x86-64 UEFI clients (defaults undionly.kpxe, snponly.efi). */
    ipxeBiosLoader?: string;
    ipxeEfiLoader?: string;
    /** The arm64 UEFI loader; unset: arm64 clients get no boot file. */
    arm64Loader?: string;
  };
  dhcp: {
    subnet?: string;
    netmask: string;
    router?: string;
    dnsServers: string[];
    domain: string;
    leaseSeconds: number;
  };
  /** Global attribute defaults (lowest precedence). */
  globals: Record<string, string>;
  /**
   * Looks up an image by `NAME` (its current version) or `NAME@N` for the
   * `%addon org_kickswarm` directive; undefined when unknown. `name` in the
   * answer is the exact version (`NAME@N`) the node is to fetch.
   */
  image?: (name: string) => { name: string; sha256: string; rawSize: number; version?: number } | undefined;
}

export interface TemplateProblem {
  /** Path relative to the data dir, e.g. `templates/kickstart.hbs` or `profiles/compute.yaml`. */
  file: string;
  line?: number;
  message: string;
}

export interface ProfileStatus {
  /** True when the files on disk are the set being served. */
  ok: boolean;
  /** Bumps on every successful (re)load. */
  generation: number;
  /** ISO time of the last successful load. */
  loadedAt: string;
  /** Problems in the files on disk (the last good set keeps serving meanwhile). */
  errors: TemplateProblem[];
  profiles: string[];
  templates: string[];
}

export type PxeMode = BootAction | 'default' | 'discover';

export interface Renderer {
  /** The node's kickstart, exactly as kickstart.cgi serves it. Throws TemplateError / NotFoundError. */
  kickstart(node: NodeRecord): string;
  /**
   * A pxelinux.cfg file: `install` (kernel, initrd, ks= and kickswarm.frontend=),
   * `os` (localboot 0), `capture` (capture environment), `default` (what unknown
   * nodes get: localboot), `discover` (the install environment for unknown nodes).
   * `session`: the install session token to put on the kernel command line.
   */
  pxelinux(node: NodeRecord | null, mode: PxeMode, session?: string): string;
  /**
   * An iPXE script (`templates/ipxe/<mode>.hbs`) for the same modes as
   * pxelinux, from the same context: kernel and initrd over HTTP from
   * `/install/boot/`, the same kernel command line. Throws TemplateError.
   */
  ipxe(node: NodeRecord | null, mode: PxeMode, session?: string): string;
  /** DHCP configuration text for the whole inventory. */
  dhcp(format: 'dnsmasq' | 'isc', nodes: NodeRecord[]): string;
  /** The merged attributes a node renders with (globals < profile chain < node). */
  attributes(node: NodeRecord): Record<string, string>;
  /** Which image a node's profile installs, if any. */
  imageFor(node: NodeRecord): { name: string; method: string } | undefined;
  /** The files of the node's profile `secrets` (handed out once per install session by secrets.cgi). */
  secrets(node: NodeRecord): SecretFile[];
  status(): ProfileStatus;
}
