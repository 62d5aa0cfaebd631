/**
 * The one decision every transport asks: "what does this node get now?".
 * TFTP (pxelinux.cfg names), iPXE, kickstart.cgi, report.cgi, setPxeboot.cgi,
 * capture.cgi, secrets.cgi and the image routes describe the request (what
 * identifies the requester, where it came from, the session token it
 * presents, what it wants) and render the Assignment they get back
 * (./assignment.ts); none of them looks at boot actions, sessions or
 * discovery on its own.
 *
 * Purposes `boot` (TFTP) and `ipxe` (HTTP) ask for a boot config: the same
 * answer, except that over HTTP the MAC must be registered for the source IP.
 *
 * Identification: a presented session token names its node; otherwise the
 * SMBIOS UUID (only it, when given), else the MAC, else the IP of a
 * `<HEXIP>` name, else the source IP. Checks, in order: the requester's
 * source IP is the node's registered IP (HTTP; TFTP deliberately compares
 * nothing, as DHCP may not have handed the address out yet, and instead
 * withholds the token), the session (when required), the boot action for the
 * purpose, the image.
 */
import type { Ipv4, Mac } from '../../protocol/node.js';
import { isSessionTokenShape } from '../../protocol/session.js';
import type { InstallSession } from '../inventory/sessions.js';
import { isSessionAction } from '../inventory/sessions.js';
import type { Inventory } from '../inventory/store.js';
import type { NodeRecord } from '../inventory/types.js';
import type { Logger } from '../log.js';
import type { Assignment, Purpose, Refusal, RefusalCode, Served, SessionGrant } from './assignment.js';
import { DiscoveryLimit } from './discovery-limit.js';

export type { Assignment, Purpose, Refusal, Served } from './assignment.js';

export interface BootRequest {
  purpose: Purpose;
  /** MAC the node claims (PXE file name, X-RHN-Provisioning-MAC-n). */
  mac?: Mac;
  /** SMBIOS UUID (pxelinux.cfg/<uuid>). */
  uuid?: string;
  /** An IP to look the node up by (a `<HEXIP>` config name). */
  ip?: Ipv4;
  /** The request's IPv4 source address; undefined when it has none (IPv6). */
  source?: Ipv4;
  /** The session token presented (X-Kickswarm-Session or `session=`), unchecked. */
  session?: string;
  /** purpose `image`: the image asked for, and whether only its existence is asked (HEAD). */
  image?: string;
  headOnly?: boolean;
  /** Which transport asked, for the event history: `tftp`, `kickstart`, ... */
  via: string;
}

export interface BootPolicyOptions {
  /**
   * Whether kickstart.cgi, report.cgi, setPxeboot.cgi and image downloads
   * need the node's session token (config `sessions.enabled`, default true).
   * Off, they fall back to the source IP as anaconda expects. capture.cgi and
   * secrets.cgi always need it.
   */
  requireSessions?: boolean;
  /** The image a node's profile installs (the renderer's imageFor); a throw counts as none. */
  imageFor?: (node: NodeRecord) => { name: string; method: string } | undefined;
  /** Called when discovery registers a node (the console line of `discover`). */
  onDiscovered?: (node: NodeRecord) => void;
  now?: () => Date;
}

type Found = { node: NodeRecord; discovered: boolean; session: InstallSession | null };

/** `NAME` of `NAME` or `NAME@N`. */
function imageBase(ref: string): string {
  const at = ref.indexOf('@');
  return at < 0 ? ref : ref.slice(0, at);
}

function refuse(code: RefusalCode, message: string, node?: NodeRecord): Refusal {
  return node ? { kind: 'refused', code, message, node } : { kind: 'refused', code, message };
}

export class BootPolicy {
  private readonly discoveryLimit = new DiscoveryLimit();
  private readonly requireSessions: boolean;
  private readonly now: () => Date;

  constructor(
    private readonly inventory: Inventory,
    private readonly log: Logger,
    private readonly opts: BootPolicyOptions = {},
  ) {
    this.requireSessions = opts.requireSessions ?? true;
    this.now = opts.now ?? (() => new Date());
  }

  /** Whether node-facing routes need a session token (else they fall back to the source IP). */
  get sessionsRequired(): boolean {
    return this.requireSessions;
  }

  /** The mode for PXELINUX's `default` name when no static file exists: `discover` while discovery is active. */
  defaultMode(): 'default' | 'discover' {
    return this.inventory.getDiscovery() ? 'discover' : 'default';
  }

  decide(req: BootRequest): Assignment {
    const bootConfig = req.purpose === 'boot' || req.purpose === 'ipxe';
    const found = !bootConfig && req.session ? this.bySession(req, req.session) : this.identify(req);
    if (found.kind === 'refused') return found;
    const { node, discovered } = found.found;
    if (bootConfig) return this.serve(node, discovered, null, this.grant(node, req.source));

    const session = found.found.session;
    if (!session) {
      const needed = this.requireSessions || req.purpose === 'capture' || req.purpose === 'secrets';
      if (needed)
        return refuse(
          'session_required',
          `a session token is required (${isSessionAction(node.bootAction) ? "the one on this node's kernel command line" : `node ${node.name} is not installing`})`,
          node,
        );
    }
    if (node.pending && (req.purpose === 'kickstart' || req.purpose === 'secrets' || req.purpose === 'image')) {
      return refuse('pending', `node ${node.name} awaits approval by an admin (kickswarm node approve ${node.name})`, node);
    }
    switch (req.purpose) {
      case 'kickstart':
      case 'secrets':
        if (node.bootAction !== 'install') return refuse('wrong_action', `node ${node.name} has boot action ${node.bootAction}, not install (kickswarm boot set ${node.name} --action install)`, node);
        break;
      case 'capture':
        if (node.bootAction !== 'capture') return refuse('wrong_action', `node ${node.name} has boot action ${node.bootAction}, not capture (kickswarm boot set ${node.name} --action capture)`, node);
        if (session?.uploadAt) return refuse('session_spent', `this session already made its upload (at ${session.uploadAt}); set the boot action to capture again for another`, node);
        break;
      case 'image': {
        if (!session) break;
        if (node.bootAction === 'capture' && req.headOnly) break;
        const image = node.bootAction === 'install' ? this.imageOf(node) : undefined;
        // Any version of the node's image (the kickstart names the exact `NAME@N`; a pinned profile names it too).
        if (!image || !req.image || imageBase(image.name) !== imageBase(req.image))
          return refuse('wrong_image', `node ${node.name} installs ${image ? `image ${image.name}` : 'no image'}, not ${req.image ?? '?'}`, node);
        break;
      }
      default:
        break;
    }
    if (req.purpose === 'secrets' && session?.secretsAt) return refuse('session_spent', `the secrets of this session were handed out already (at ${session.secretsAt})`, node);
    return this.serve(node, discovered, session, null);
  }

  private serve(node: NodeRecord, discovered: boolean, session: InstallSession | null, grant: SessionGrant | null): Served {
    return {
      kind: 'serve',
      node,
      discovered,
      action: node.bootAction,
      boot: { mode: node.bootAction, session: grant },
      image: node.bootAction === 'install' ? (this.imageOf(node) ?? null) : null,
      session,
    };
  }

  private imageOf(node: NodeRecord): { name: string; method: string } | undefined {
    try {
      return this.opts.imageFor?.(node);
    } catch {
      return undefined;
    }
  }

  /** The node's live session token, for a boot config asked for from the node's registered IP only. */
  private grant(node: NodeRecord, source: Ipv4 | undefined): SessionGrant | null {
    // A discovered node awaiting approval gets no token: its installer must not get past kickstart.cgi.
    if (!isSessionAction(node.bootAction) || node.pending === true || source === undefined || source !== node.ip) return null;
    const s = this.inventory.session(node.name);
    if (!s || this.problem(s, node)) return null;
    return { token: s.token, expiresAt: s.expiresAt };
  }

  /** Why a session does not (or no longer) stand for `node`, or undefined when it does. */
  private problem(s: InstallSession, node: NodeRecord): RefusalCode | undefined {
    if (Date.parse(s.expiresAt) <= this.now().getTime()) return 'session_expired';
    if (s.action !== node.bootAction || s.mac !== node.mac || s.ip !== node.ip) return 'session_invalid';
    return undefined;
  }

  private bySession(req: BootRequest, token: string): { kind: 'found'; found: Found } | Refusal {
    if (req.source === undefined) return refuse('no_source', 'the request has no IPv4 source address to check');
    const s = isSessionTokenShape(token) ? this.inventory.sessionByToken(token) : undefined;
    if (!s) return refuse('session_invalid', 'unknown or ended session token');
    const node = this.inventory.getNode(s.node);
    if (!node) return refuse('session_invalid', 'unknown or ended session token');
    if (req.source !== node.ip) return refuse('ip_mismatch', `this session token is not valid from IP ${req.source}`);
    if (req.mac && req.mac !== node.mac) return refuse('session_invalid', `this session token is not valid for MAC ${req.mac}`);
    const why = this.problem(s, node);
    if (why === 'session_expired') return refuse(why, `the session of node ${node.name} expired at ${s.expiresAt}`, node);
    if (why) return refuse(why, `the session of node ${node.name} is no longer valid (its boot action or address changed)`, node);
    return { kind: 'found', found: { node, discovered: false, session: s } };
  }

  /**
   * Identifies the node without a token. An unknown MAC is registered when a
   * discovery session is active and its limits allow (./discovery-limit.ts);
   * it awaits approval unless the session auto-approves. Over HTTP, a MAC whose node is registered
   * with another IP than the source, or a request with no IPv4 source, is refused.
   */
  private identify(req: BootRequest): { kind: 'found'; found: Found } | Refusal {
    const http = req.purpose !== 'boot';
    const ok = (node: NodeRecord, discovered = false) => ({ kind: 'found' as const, found: { node, discovered, session: null } });
    if (http && req.source === undefined) return refuse('no_source', 'the request has no IPv4 source address to check');
    if (req.uuid) {
      const n = this.inventory.findByUuid(req.uuid);
      return n ? ok(n) : refuse('unknown_node', `no node registered for UUID ${req.uuid}`);
    }
    if (req.mac) {
      const n = this.inventory.findByMac(req.mac);
      if (n) {
        if (http && n.ip !== req.source) return refuse('ip_mismatch', `MAC ${req.mac} is not registered for IP ${req.source}`, n);
        return ok(n);
      }
      const discovery = this.inventory.getDiscovery();
      if (discovery) {
        const refused = this.discoveryLimit.take(discovery, this.inventory.countPending());
        if (refused) {
          this.log.warn({ mac: req.mac, source: req.source, via: req.via, why: refused }, 'discovery refused a new MAC');
          return refuse('unknown_node', `no node registered for MAC ${req.mac}`);
        }
        const node = this.inventory.registerDiscovered(req.mac, req.via);
        this.log.info({ node: node.name, mac: node.mac, ip: node.ip, via: req.via }, 'discovered node');
        this.opts.onDiscovered?.(node);
        return ok(node, true);
      }
      return refuse('unknown_node', `no node registered for MAC ${req.mac}`);
    }
    const ip = req.ip ?? req.source;
    if (ip) {
      const n = this.inventory.findByIp(ip);
      return n ? ok(n) : refuse('unknown_node', `no node registered for IP ${ip}`);
    }
    return refuse('unknown_node', 'nothing identifies the requester (no MAC, IP or UUID in the request)');
  }
}
