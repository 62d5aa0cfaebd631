/**
 * Routes an installing (or capturing) node calls while it works. The node is
 * always found by the connection's source IP, so it can only speak for itself.
 *
 * `POST /install/sbin/public/report.cgi`, JSON InstallReport
 *   200 `{"node","state","bootAction"}` | 400 bad body | 404 unknown requester.
 *   Stores the node's install progress; a state change (or a new install) is
 *   recorded in the node's history, `failed` with its reason.
 *
 * `PUT /install/sbin/public/capture.cgi?image=NAME`, body: a chunked image,
 * `Authorization: Bearer <capture token of this node>`
 *   201 ImageMeta + `uploadedBytes` | 400 bad name or broken upload | 401
 *   missing/wrong token | 403 boot action not `capture` | 404 unknown
 *   requester | 409 image exists | 413 too large | 422 not an image or a
 *   chunk fails verification. On success the node's boot action becomes `os`.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { ConflictError, ForbiddenError, InvalidInputError, NotFoundError, UnauthorizedError } from '../../../protocol/errors.js';
import { CAPTURE_PATH, REPORT_PATH, parseInstallReport } from '../../../protocol/install.js';
import { DEFAULT_CAPTURE_IDLE_MS, DEFAULT_MAX_CAPTURE_BYTES, httpError, storeUploadedImage } from '../../cluster/capture-upload.js';
import type { CaptureTokenVerifier } from '../../cluster/capture-token.js';
import { applyReport } from '../../cluster/report.js';
import { installedImageEvent, newlyInstalledImage } from '../../cluster/installed-image.js';
import type { BootPolicy } from '../../core/boot.js';
import { ImageStore } from '../../images/store.js';
import type { Inventory } from '../../inventory/store.js';
import type { NodeRecord } from '../../inventory/types.js';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics.js';
import { bearerToken } from '../auth.js';
import { queryValue, readJson } from '../body.js';
import { errorAnswer } from '../errors.js';
import { remoteIp } from '../requester.js';
import { safeRecordEvent } from './kickstart.js';

export interface InstallRouteDeps {
  inventory: Inventory;
  policy: BootPolicy;
  images: ImageStore;
  captureTokens: CaptureTokenVerifier;
  metrics?: Pick<Metrics, 'installReports'>;
  log: Logger;
  /** Largest capture upload accepted; default DEFAULT_MAX_CAPTURE_BYTES (64 GiB). */
  maxCaptureBytes?: number;
  /** A capture upload silent this long is broken off; default 120 s. */
  captureIdleMs?: number;
  now?: () => Date;
}

/** The requesting node, by source IP; NotFoundError naming the IP otherwise. */
function requester(ctx: Context, policy: BootPolicy, route: string, via: string): NodeRecord {
  const ip = remoteIp(ctx);
  const d = policy.decide({ ip, via });
  if (d.kind !== 'node') throw new NotFoundError(`${route}: no node registered for ${d.kind === 'unknown' ? d.lookedUp : `IP ${ip}`}`, { ip });
  return d.node;
}

export function installRoutes(deps: InstallRouteDeps): Router {
  const { inventory, policy, images, captureTokens, metrics } = deps;
  const log = deps.log.child({ route: 'install' });
  const now = deps.now ?? (() => new Date());
  const maxBytes = deps.maxCaptureBytes ?? DEFAULT_MAX_CAPTURE_BYTES;
  const idleTimeoutMs = deps.captureIdleMs ?? DEFAULT_CAPTURE_IDLE_MS;
  const router = new Router();

  router.post(REPORT_PATH, async (ctx) => {
    const node = requester(ctx, policy, 'report.cgi', 'report');
    const report = parseInstallReport(await readJson(ctx));
    const at = now();
    const applied = applyReport(node.install, report, at);
    const installed = report.state === 'done' ? newlyInstalledImage(inventory, node, at) : undefined;
    if (installed) applied.progress.image = installed;
    inventory.setInstall(node.name, applied.progress);
    if (installed) {
      const e = installedImageEvent(installed);
      safeRecordEvent(inventory, log, node.name, 'image', e.message, e.data);
    }
    if (applied.event) {
      const data = { state: report.state, from: applied.newInstall ? null : (node.install?.state ?? null), reason: report.reason ?? null };
      safeRecordEvent(inventory, log, node.name, 'install', applied.event, data);
      log.info({ node: node.name, state: report.state, reason: report.reason }, applied.event);
    }
    metrics?.installReports.inc({ state: report.state });
    ctx.status = 200;
    ctx.body = { node: node.name, state: report.state, bootAction: node.bootAction };
  });

  router.put(CAPTURE_PATH, async (ctx) => {
    // Any refusal closes the connection so the node stops sending its disk.
    ctx.set('Connection', 'close');
    const raw = queryValue(ctx, 'image');
    if (raw === undefined || raw === '') throw new InvalidInputError('capture.cgi: missing image=NAME');
    const name = ImageStore.parseName(raw);
    const node = requester(ctx, policy, 'capture.cgi', 'capture');
    const token = bearerToken(ctx.get('authorization'));
    if (token === undefined || !captureTokens.verify(node.name, token)) {
      ctx.set('WWW-Authenticate', 'Bearer realm="kickswarm-capture"');
      safeRecordEvent(inventory, log, node.name, 'capture', `capture upload of ${name} refused: ${token === undefined ? 'no' : 'wrong'} capture token`);
      throw new UnauthorizedError(`capture.cgi: ${token === undefined ? 'a capture token is required (Authorization: Bearer <token>)' : `wrong capture token for node ${node.name}`}`);
    }
    if (node.bootAction !== 'capture') {
      throw new ForbiddenError(`capture.cgi: node ${node.name} has boot action ${node.bootAction}, not capture (kickswarm boot set ${node.name} --action capture)`, { node: node.name });
    }
    if (images.has(name)) throw new ConflictError(`capture.cgi: image ${name} already exists (remove it first or capture under another name)`);
    const declared = ctx.get('content-length');
    if (/^\d+$/.test(declared) && Number(declared) > maxBytes) throw httpError(413, `capture.cgi: upload larger than ${maxBytes} bytes`);

    const started = now();
    safeRecordEvent(inventory, log, node.name, 'capture', `capture upload of image ${name} started`, { image: name });
    log.info({ node: node.name, image: name }, 'capture upload started');
    let meta;
    try {
      meta = await storeUploadedImage(ctx.req, images, name, { maxBytes, idleTimeoutMs });
    } catch (err) {
      const a = errorAnswer(err);
      const why = a.status === 500 ? (err as Error).message : a.message;
      safeRecordEvent(inventory, log, node.name, 'capture', `capture of image ${name} failed (${a.status}): ${why}`, { image: name, status: a.status });
      log.warn({ node: node.name, image: name, status: a.status, err: (err as Error).message }, 'capture failed');
      throw err;
    }
    const secs = (now().getTime() - started.getTime()) / 1000;
    safeRecordEvent(
      inventory,
      log,
      node.name,
      'capture',
      `captured image ${name}: ${meta.rawSize} bytes raw, ${meta.storedSize} stored, sha256 ${meta.sha256.slice(0, 16)}, in ${secs.toFixed(1)} s`,
      { image: name, rawSize: meta.rawSize, storedSize: meta.storedSize, sha256: meta.sha256 },
    );
    try {
      inventory.setBootAction({ names: [node.name] }, 'os', 'capture complete');
    } catch (err) {
      log.warn({ node: node.name, err: (err as Error).message }, 'captured, but could not set the boot action to os');
    }
    log.info({ node: node.name, image: name, rawSize: meta.rawSize, seconds: secs }, 'capture stored');
    ctx.remove('Connection');
    ctx.status = 201;
    ctx.body = meta;
  });

  return router;
}
