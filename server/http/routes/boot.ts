/**
 * `GET|HEAD /install/boot/PATH`: the static files of the TFTP root over HTTP
 * (the installer kernel and initrd for lpxelinux.0 and iPXE, which fetch tens
 * of MiB far faster over TCP than over TFTP lock-step). The same sandbox as
 * TFTP (server/sandbox.ts): a name is checked as text, then resolved and
 * required to be a regular file strictly inside the root, so nothing outside it
 * can be read. Ranges, ETag and HEAD as for images (../file-response.ts); a
 * bad name -> 400, refused -> 403, absent -> 404.
 * Generated `pxelinux.cfg/*` files are TFTP-only.
 */
import fs from 'node:fs';
import Router from '@koa/router';
import { ForbiddenError, InvalidInputError, NotFoundError } from '../../../protocol/errors.js';
import type { Logger } from '../../log.js';
import { checkRequestName, openInRoot } from '../../sandbox.js';
import { sendFile } from '../file-response.js';

export const BOOT_ROUTE_PREFIX = '/install/boot';

export interface BootRouteDeps {
  /** The TFTP root. */
  root: string;
  log: Logger;
}

export function bootFileRoutes(deps: BootRouteDeps): Router {
  const router = new Router();
  let realRoot: string | undefined;
  router.get(`${BOOT_ROUTE_PREFIX}/*path`, async (ctx) => {
    const raw = ctx.path.slice(BOOT_ROUTE_PREFIX.length + 1);
    let name: string;
    try {
      name = decodeURIComponent(raw);
    } catch {
      throw new InvalidInputError('malformed percent-encoding in the path');
    }
    const check = checkRequestName(name);
    if (!check.ok) throw new InvalidInputError(`boot file name refused: ${check.reason}`);
    try {
      realRoot ??= fs.realpathSync(deps.root);
    } catch {
      throw new NotFoundError('no TFTP root');
    }
    const opened = await openInRoot(realRoot, check.rel);
    if (!opened.ok) {
      if (opened.why === 'denied') {
        deps.log.warn({ name: check.rel, reason: opened.reason, ip: ctx.ip }, 'boot file refused');
        throw new ForbiddenError(`boot file ${check.rel}: ${opened.reason}`);
      }
      throw new NotFoundError(`no boot file ${check.rel}`);
    }
    await sendFile(ctx, {
      fh: opened.handle,
      etag: (st) => `"${st.mtimeMs.toString(16)}-${st.size.toString(16)}"`,
      what: 'file',
      onStream: (start, end) => deps.log.debug({ file: check.rel, start, end, ip: ctx.ip }, 'serving boot file'),
    });
  });
  return router;
}
