/**
 * What the boot decision answers (BootPolicy.decide): an Assignment says
 * exactly what a requester gets now, or why it gets nothing. Transports only
 * render it: TFTP/PXELINUX and iPXE turn `boot` into a config, kickstart.cgi
 * renders the kickstart of `node`, the image routes serve `image`, capture.cgi
 * takes one upload under `session`. A Refusal carries a stable code; the
 * transports turn it into "file not found" (TFTP) or an error (HTTP, through
 * refusalError and server/http/errors.ts).
 */
import { BusyError, ForbiddenError, type KickswarmError, NotFoundError } from '../../protocol/errors.js';
import type { BootAction } from '../../protocol/node.js';
import type { InstallSession } from '../inventory/sessions.js';
import type { NodeRecord } from '../inventory/types.js';
import type { PxeMode } from '../render/types.js';

/** What the requester asks for; decides which checks apply. */
export type Purpose =
  /** A boot config over TFTP (pxelinux.cfg): the source IP is not compared. */
  | 'boot'
  /** An iPXE script over HTTP (boot.ipxe): a boot config whose MAC must be registered for the source IP. */
  | 'ipxe'
  /** kickstart.cgi: needs boot action install. */
  | 'kickstart'
  /** report.cgi: progress of an install or capture. */
  | 'report'
  /** setPxeboot.cgi: the node flips its own action. */
  | 'setpxeboot'
  /** capture.cgi: one upload, needs boot action capture. */
  | 'capture'
  /** /install/images/NAME[.torrent]. */
  | 'image'
  /** secrets.cgi: the profile's secrets, once. */
  | 'secrets';

export type RefusalCode =
  /** Nothing in the inventory matches what the request carries. */
  | 'unknown_node'
  /** The MAC (or token) belongs to a node registered with another IP than the requester's. */
  | 'ip_mismatch'
  /** The requester has no IPv4 source address to check. */
  | 'no_source'
  /** Sessions are on and the request carries no token. */
  | 'session_required'
  /** The token is malformed, unknown, ended, or belongs to another node. */
  | 'session_invalid'
  | 'session_expired'
  /** The one-time use (upload, secrets) was made already. */
  | 'session_spent'
  /** The node's boot action does not allow this (kickstart outside install, capture outside capture). */
  | 'wrong_action'
  /** The image asked for is not the one this node's assignment names. */
  | 'wrong_image'
  /** A discovered node that an admin has not approved yet (retry later). */
  | 'pending';

export interface Refusal {
  kind: 'refused';
  code: RefusalCode;
  /** For the requester and the log; names no other node than the requester's own. */
  message: string;
  /** The requester's node, when it was identified (for its event history). */
  node?: NodeRecord;
}

/** The session token to put in a boot config, with its expiry. */
export interface SessionGrant {
  token: string;
  expiresAt: string;
}

export interface Served {
  kind: 'serve';
  /** The requester's node (possibly registered just now by discovery). */
  node: NodeRecord;
  discovered: boolean;
  action: BootAction;
  /**
   * Boot config inputs: the mode to render and the session token for the
   * kernel command line, which is only ever given to the node's registered IP.
   */
  boot: { mode: PxeMode; session: SessionGrant | null };
  /** The image the node's profile installs (install action), if known. */
  image: { name: string; method: string } | null;
  /** The session the request was checked against (HTTP purposes with a token). */
  session: InstallSession | null;
}

export type Assignment = Served | Refusal;

/** The error an HTTP transport throws for a refusal (statuses live in server/http/errors.ts). */
export function refusalError(r: Refusal, route: string, retryAfterSeconds = 15): KickswarmError {
  const detail = { refusal: r.code };
  if (r.code === 'pending') return new BusyError(`${route}: this node awaits approval by an admin; retry in ${retryAfterSeconds} s`, retryAfterSeconds);
  if (r.code === 'unknown_node') return new NotFoundError(`${route}: ${r.message}`, detail);
  return new ForbiddenError(`${route}: ${r.message}`, detail);
}
