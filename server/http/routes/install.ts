/**
 * Routes an installing (or capturing) node calls while it works. Each asks
 * BootPolicy.decide for the requester's assignment with the install session
 * token it presents (X-Kickswarm-Session or `session=`), checked against the
 * node's registered IP, so a node can only speak for itself.
 *
 * `POST /install/sbin/public/report.cgi`, JSON InstallReport
 *   200 `{"node","state","bootAction"}` | 400 bad body | 403 no, wrong,
 *   expired or ended session | 404 unknown requester (sessions off).
 *   Stores the node's install progress; a state change (or a new install) is
 *   recorded in the node's history, `failed` with its reason.
 *
 * `GET /install/sbin/public/secrets.cgi`
 *   200 SecretsResponse (the profile's `secrets`) | 403 no, wrong, expired,
 *   ended session, boot action not `install`, or the secrets of this session
 *   were handed out already. Always needs a session, once per session.
 *
 * `PUT /install/sbin/public/capture.cgi?image=NAME`, body: a chunked image,
 * the node's capture session token (X-Kickswarm-Session)
 *   201 ImageMeta + `uploadedBytes` | 400 bad name or broken upload | 403
 *   no, wrong, expired, ended or spent session, boot action not `capture`
 *   | 409 image exists | 413 too large | 422 not an image or a chunk fails
 *   verification | 503 + Retry-After when `capture.maxConcurrentUploads`
 *   uploads are running. The session serves one upload, whatever its outcome;
 *   on success the node's boot action becomes `os`, which ends the session.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { BusyError, ConflictError, InvalidInputError, TooLargeError } from '../../../protocol/errors.js';
import { CAPTURE_PATH, REPORT_PATH, parseInstallReport } from '../../../protocol/install.js';
import { SECRETS_PATH, type SecretFile, type SecretsResponse } from '../../../protocol/session.js';
import { DEFAULT_CAPTURE_IDLE_MS, DEFAULT_MAX_CAPTURE_BYTES, storeUploadedImage } from '../../cluster/capture-upload.js';
import { applyReport } from '../../cluster/report.js';
import { type Purpose, refusalError, type Served } from '../../core/assignment.js';
import { installedImageEvent, newlyInstalledImage } from '../../cluster/installed-image.js';
import type { BootPolicy } from '../../core/boot.js';
import { ImageStore } from '../../images/store.js';
import type { Inventory } from '../../inventory/store.js';
import type { NodeRecord } from '../../inventory/types.js';
import type { Logger } from '../../log.js';
import type { Metrics } from '../../metrics.js';
import { queryValue, readJson } from '../body.js';
import { errorAnswer } from '../errors.js';
import { remoteIp } from '../requester.js';
import { presentedSession } from '../session.js';
import { safeRecordEvent } from './kickstart.js';

export interface InstallRouteDeps {
  inventory: Inventory;
  policy: BootPolicy;
  images: ImageStore;
  /** The node's profile `secrets` (the renderer's); none when absent. */
  secrets?: (node: NodeRecord) => SecretFile[];
  metrics?: Pick<Metrics, 'installReports'>;
  log: Logger;
  /** Largest capture upload accepted; default DEFAULT_MAX_CAPTURE_BYTES (64 GiB). */
  maxCaptureBytes?: number;
  /** Capture uploads received at once; more are answered 503. Default 2. */
  maxConcurrentCaptures?: number;
  /** A capture upload silent this long is broken off; default 120 s. */
  captureIdleMs?: number;
  now?: () => Date;
}

/** The requester's assignment for `purpose`; a refusal is thrown (and noted on the node when it was identified). */
function assignment(ctx: Context, deps: InstallRouteDeps, purpose: Purpose, route: string, log: Logger): Served {
  const a = deps.policy.decide({ purpose, source: remoteIp(ctx), session: presentedSession(ctx), via: purpose });
  if (a.kind === 'refused') {
    if (a.node && purpose !== 'report') safeRecordEvent(deps.inventory, log, a.node.name, purpose, `${route} refused: ${a.message}`, { refusal: a.code });
    throw refusalError(a, route);
  }
  return a;
}

export function installRoutes(deps: InstallRouteDeps): Router {
  const { inventory, images, metrics } = deps;
  const log = deps.log.child({ route: 'install' });
  const now = deps.now ?? (() => new Date());
  const maxBytes = deps.maxCaptureBytes ?? DEFAULT_MAX_CAPTURE_BYTES;
  const maxUploads = deps.maxConcurrentCaptures ?? 2;
  const idleTimeoutMs = deps.captureIdleMs ?? DEFAULT_CAPTURE_IDLE_MS;
  let uploading = 0;
  const router = new Router();

  router.post(REPORT_PATH, async (ctx) => {
    const { node } = assignment(ctx, deps, 'report', 'report.cgi', log);
    const report = parseInstallReport(await readJson(ctx));
    const at = now();
    const applied = applyReport(node.install, report, at);
    const installed = report.state === 'done' ? newlyInstalledImage(inventory, node, at) : undefined;
    if (installed) applied.progress.image = installed;
    inventory.setInstall(node.name, applied.progress);
    if (report.log?.length) {
      try {
        inventory.appendInstallLog(node.name, report.log);
      } catch (err) {
        log.warn({ node: node.name, err: (err as Error).message }, 'could not store installer log lines');
      }
    }
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

  router.get(SECRETS_PATH, async (ctx) => {
    const a = assignment(ctx, deps, 'secrets', 'secrets.cgi', log);
    if (!a.session || !inventory.claimSession(a.session.token, 'secrets')) {
      throw refusalError({ kind: 'refused', code: 'session_spent', message: 'the secrets of this session were handed out already' }, 'secrets.cgi');
    }
    const files = deps.secrets?.(a.node) ?? [];
    safeRecordEvent(inventory, log, a.node.name, 'secrets', `handed out ${files.length} secret file(s) to ${remoteIp(ctx)}`, { files: files.map((f) => f.path) });
    const body: SecretsResponse = { node: a.node.name, files };
    ctx.set('Cache-Control', 'no-store');
    ctx.body = body;
  });

  router.put(CAPTURE_PATH, async (ctx) => {
    // Any refusal closes the connection so the node stops sending its disk.
    ctx.set('Connection', 'close');
    const raw = queryValue(ctx, 'image');
    if (raw === undefined || raw === '') throw new InvalidInputError('capture.cgi: missing image=NAME');
    const name = ImageStore.parseName(raw);
    const a = assignment(ctx, deps, 'capture', 'capture.cgi', log);
    const node = a.node;
    if (images.has(name)) throw new ConflictError(`capture.cgi: image ${name} already exists (remove it first or capture under another name)`);
    const declared = ctx.get('content-length');
    if (/^\d+$/.test(declared) && Number(declared) > maxBytes) throw new TooLargeError(`capture.cgi: upload larger than ${maxBytes} bytes`, { limit: maxBytes });
    if (uploading >= maxUploads) throw new BusyError(`capture.cgi: ${uploading} capture uploads are running; retry later`, 60);
    if (!a.session || !inventory.claimSession(a.session.token, 'upload')) {
      throw refusalError({ kind: 'refused', code: 'session_spent', message: 'this session already made its upload', node }, 'capture.cgi');
    }

    const started = now();
    safeRecordEvent(inventory, log, node.name, 'capture', `capture upload of image ${name} started`, { image: name });
    log.info({ node: node.name, image: name }, 'capture upload started');
    let meta;
    uploading++;
    try {
      meta = await storeUploadedImage(ctx.req, images, name, { maxBytes, idleTimeoutMs });
    } catch (err) {
      const e = errorAnswer(err);
      const why = e.status === 500 ? (err as Error).message : e.message;
      safeRecordEvent(inventory, log, node.name, 'capture', `capture of image ${name} failed (${e.status}): ${why}`, { image: name, status: e.status });
      log.warn({ node: node.name, image: name, status: e.status, err: (err as Error).message }, 'capture failed');
      throw err;
    } finally {
      uploading--;
    }
    const secs = (now().getTime() - started.getTime()) / 1000;
    safeRecordEvent(inventory, log, node.name, 'capture', `captured image ${name}: ${meta.rawSize} bytes raw, ${meta.storedSize} stored, sha256 ${meta.sha256.slice(0, 16)}, in ${secs.toFixed(1)} s`, {
      image: name,
      rawSize: meta.rawSize,
      storedSize: meta.storedSize,
      sha256: meta.sha256,
    });
    try {
      // The node's own `done` report would come after the flip has ended its session: record it here.
      const fresh = inventory.getNode(node.name);
      const total = fresh?.install?.bytesTotal;
      const final = {
        state: 'done' as const,
        reason: `captured image ${name}: ${meta.rawSize} bytes raw, ${meta.uploadedBytes} uploaded, sha256 ${meta.sha256.slice(0, 16)}`,
        ...(total !== undefined ? { bytesDone: total, bytesTotal: total } : {}),
      };
      inventory.setInstall(node.name, applyReport(fresh?.install ?? null, final, now()).progress);
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
