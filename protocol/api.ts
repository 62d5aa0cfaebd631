/**
 * The frontend's HTTP surface as the node installer, scripts and admin tools
 * see it: route paths and the JSON bodies of `/api/v1`. Imports nothing of ours
 * except `protocol/*`; the server's records are structurally compatible with
 * the `Api*` shapes below.
 */
import type { ErrorCode } from './errors.js';
import type { InstallProgress } from './install.js';
import type { BootAction, Ipv4, Mac, NodeName } from './node.js';

/** ROCKS: the installing node fetches its kickstart here (node found by MAC header or source IP). */
export const KICKSTART_PATH = '/install/sbin/kickstart.cgi';
/** ROCKS: the installing node flips its own boot action here (`?action=os`, or `params={"action":"os"}`). */
export const SETPXEBOOT_PATH = '/install/sbin/public/setPxeboot.cgi';
/** Image bytes (`/install/images/NAME`) and torrents (`/install/images/NAME.torrent`). */
export const IMAGES_PREFIX = '/install/images/';

/** `/install/images/NAME` or `NAME@N` (URL-encoded, `@` kept): the image bytes, every torrent's web seed. */
export function imagePath(name: string): string {
  return `${IMAGES_PREFIX}${encodeURIComponent(name).replace(/%40/g, '@')}`;
}

/** `/install/images/NAME.torrent`. */
export function torrentPath(name: string): string {
  return `${imagePath(name)}.torrent`;
}

/** An image in the frontend's store: `image list --json`, capture.cgi's answer (plus `uploadedBytes`). */
export interface ImageMeta {
  /** The image's name (without version). */
  name: string;
  /** Version number, from 1. */
  version: number;
  /** `name@version`. */
  ref: string;
  rawSize: number;
  /** Size of the .ksimg file. */
  storedSize: number;
  chunkSize: number;
  chunkCount: number;
  storedChunks: number;
  /** SHA-256 (hex) of the raw image. */
  sha256: string;
  /** ISO 8601. */
  createdAt: string;
  infoHash: string;
}
/** OMF PXE aggregate manager: network-boot a node (`?node=NAME[&image=IMG]`). */
export const OMF_SET_BOOT_IMAGE_PATH = '/pxe/setBootImage';
/** OMF PXE aggregate manager: boot a node from its disk again (`?node=NAME`). */
export const OMF_CLEAR_BOOT_IMAGE_PATH = '/pxe/clearBootImage';
/** OMF frisbee service: multicast sessions. */
export const FRISBEE_STATUS_PATH = '/frisbee/status';
export const FRISBEE_GET_ADDRESS_PATH = '/frisbee/getAddress';
export const METRICS_PATH = '/metrics';

/** The admin API; every route below it needs `Authorization: Bearer <token>`. */
export const API_PREFIX = '/api/v1';
export const API_NODES_PATH = `${API_PREFIX}/nodes`;
export const API_BOOT_PATH = `${API_PREFIX}/boot`;
export const API_PROFILES_STATUS_PATH = `${API_PREFIX}/profiles/status`;

/** `/api/v1/nodes/NAME` (the name is URL-encoded). */
export function apiNodePath(name: string): string {
  return `${API_NODES_PATH}/${encodeURIComponent(name)}`;
}

/** `/api/v1/nodes/NAME/boot`. */
export function apiNodeBootPath(name: string): string {
  return `${apiNodePath(name)}/boot`;
}

/**
 * Request header anaconda sends once per interface, n = 0, 1, ...:
 * `X-RHN-Provisioning-MAC-0: eth0 52:54:00:12:34:56`.
 */
export const PROVISIONING_MAC_HEADER_PREFIX = 'X-RHN-Provisioning-MAC-';

/** Largest request body the frontend reads for these routes; beyond it answers 413. */
export const MAX_BODY_BYTES = 64 * 1024;

/** The `params` query/form value ROCKS clients send to setPxeboot.cgi. */
export interface SetPxebootParams {
  action: BootAction;
}

// ---- /api/v1 JSON bodies ----

/** Every non-2xx answer of `/api/v1`. */
export interface ApiErrorBody {
  error: { code: ErrorCode | 'http_error'; message: string };
}

export type ApiInstallProgress = InstallProgress;

/** A node: the inventory's record, and what `/api/v1` answers for it. */
export interface NodeRecord {
  name: NodeName;
  /** Lowercase colon form. */
  mac: Mac;
  ip: Ipv4;
  uuid: string | null;
  appliance: string;
  rack: number | null;
  rank: number | null;
  attrs: Record<string, string>;
  bootAction: BootAction;
  install: InstallProgress | null;
  /** Registered by discovery and awaiting approval (`kickswarm node approve`, `POST /api/v1/nodes/:name/approve`): gets no kickstart. Absent means false. */
  pending?: boolean;
  createdAt: string;
  updatedAt: string;
}

export type ApiNode = NodeRecord;

export interface ApiNodeEvent {
  id: number;
  node: string;
  at: string;
  kind: string;
  message: string;
  data?: Record<string, unknown>;
}

/** `GET /api/v1/nodes[?appliance=A]`, `POST /api/v1/boot`. */
export interface NodeListResponse {
  nodes: ApiNode[];
}

/** `GET /api/v1/nodes/:name`: the node and its most recent events, oldest first. */
export interface NodeDetailResponse {
  node: ApiNode;
  events: ApiNodeEvent[];
}

/** `POST /api/v1/nodes` (201), `PUT /api/v1/nodes/:name/boot`. */
export interface NodeResponse {
  node: ApiNode;
}

/** `POST /api/v1/nodes`: same fields and defaults as `kickswarm node add`. */
export interface AddNodeRequest {
  name: string;
  mac: string;
  ip: string;
  /** Default `compute`. */
  appliance?: string;
  rack?: number | null;
  rank?: number | null;
  uuid?: string | null;
  attrs?: Record<string, string>;
  /** Default `os`. */
  bootAction?: BootAction;
}

/** `DELETE /api/v1/nodes/:name`. */
export interface RemoveNodeResponse {
  removed: string;
}

/** `PUT /api/v1/nodes/:name/boot`. */
export interface SetNodeBootRequest {
  action: BootAction;
}

/** `POST /api/v1/boot`: exactly one of `all`, `appliance`, `names`. */
export interface BulkBootRequest {
  action: BootAction;
  all?: true;
  appliance?: string;
  names?: string[];
}

/** `GET /api/v1/profiles/status`. */
export interface ApiProfileStatus {
  ok: boolean;
  generation: number;
  loadedAt: string;
  errors: { file: string; line?: number; message: string }[];
  profiles: string[];
  templates: string[];
}
