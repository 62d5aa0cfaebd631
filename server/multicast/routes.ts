/**
 * OMF frisbee service routes (docs/multicast.md has the exact shapes):
 *
 *   GET /frisbee/getAddress?img=NAME   start or reuse NAME's session; XML with
 *                                      group, port and what a receiver needs
 *   GET /frisbee/status[?img=NAME][&format=json]
 *                                      every session (or NAME's), XML or JSON
 *
 * Missing or bad names -> InvalidInputError (400), unknown images ->
 * NotFoundError (404); the central error middleware answers them as XML.
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { FRISBEE_GET_ADDRESS_PATH, FRISBEE_STATUS_PATH } from '../../protocol/api.js';
import { InvalidInputError } from '../../protocol/errors.js';
import type { FrisbeeAddress } from '../../protocol/frisbee.js';
import { queryValue } from '../http/body.js';
import { xmlElement, xmlEscape } from '../http/xml.js';
import type { MulticastSessions, SessionStatus } from './sessions.js';

/** Bytes per second as OMF's `bandwidth`: Mbit/s with one decimal. */
export function mbps(bytesPerSec: number): string {
  return ((bytesPerSec * 8) / 1e6).toFixed(1);
}

/** The getAddress answer. */
export function addressXml(a: FrisbeeAddress): string {
  const fields: [string, string | number][] = [
    ['image', a.image],
    ['mcAddress', a.mcAddress],
    ['mcPort', a.mcPort],
    ['sessionId', a.sessionId],
    ['imageId', a.imageId],
    ['chunkSize', a.chunkSize],
    ['chunkCount', a.chunkCount],
    ['storedChunks', a.storedChunks],
    ['indexEnd', a.indexEnd],
    ['blockSize', a.blockSize],
    ['bandwidth', mbps(a.rateBytesPerSec)],
    ['rateBytesPerSec', a.rateBytesPerSec],
    ['ttl', a.ttl],
  ];
  const body = fields.map(([k, v]) => `  <${k}>${xmlEscape(String(v))}</${k}>`).join('\n');
  return `<?xml version='1.0'?>\n<response status="OK">\n${body}\n</response>\n`;
}

/** The status answer. */
export function statusXml(sessions: SessionStatus[]): string {
  const rows = sessions.map((s) =>
    xmlElement('session', {
      image: s.image,
      mcAddress: s.mcAddress,
      mcPort: String(s.mcPort),
      bandwidth: mbps(s.rate),
      rateCap: String(s.rateCap),
      rate: String(s.rate),
      receivers: String(s.receivers),
      activeReceivers: String(s.activeReceivers),
      bytesSent: String(s.bytesSent),
      datagramsSent: String(s.datagramsSent),
      chunksSent: String(s.chunksSent),
      chunksResent: String(s.chunksResent),
      requestsReceived: String(s.requestsReceived),
      queueLength: String(s.queueLength),
      dropped: String(s.dropped.total),
      idleSecondsLeft: String(s.idleSecondsLeft),
      sessionId: String(s.sessionId),
      startedAt: s.startedAt,
    }),
  );
  const inner = rows.map((r) => `  ${r}\n`).join('');
  return `<?xml version='1.0'?>\n<frisbee status="OK" sessions="${sessions.length}">\n${inner}</frisbee>\n`;
}

function xml(ctx: Context, body: string): void {
  ctx.status = 200;
  ctx.type = 'application/xml; charset=utf-8';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = body;
}

export function frisbeeRoutes(sessions: Pick<MulticastSessions, 'getAddress' | 'status'>): Router {
  const router = new Router();

  router.get(FRISBEE_GET_ADDRESS_PATH, async (ctx) => {
    const img = queryValue(ctx, 'img');
    if (img === undefined || img.trim() === '') throw new InvalidInputError('missing image (want img=NAME)');
    xml(ctx, addressXml(await sessions.getAddress(img.trim())));
  });

  router.get(FRISBEE_STATUS_PATH, (ctx) => {
    const img = queryValue(ctx, 'img')?.trim();
    const format = queryValue(ctx, 'format') ?? 'xml';
    if (format !== 'xml' && format !== 'json') throw new InvalidInputError('format must be xml or json');
    const list = sessions.status().filter((s) => !img || s.image === img);
    if (format === 'json') {
      ctx.set('Cache-Control', 'no-store');
      ctx.body = { sessions: list };
      return;
    }
    xml(ctx, statusXml(list));
  });

  return router;
}
