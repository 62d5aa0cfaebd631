/**
 * OMF PXE aggregate manager compatibility, for experiment scripts that drive
 * network boot:
 *
 *   GET /pxe/setBootImage?node=NAME[&image=IMG]   boot action := install
 *                                                 (IMG kept as attribute `omf.image`)
 *   GET /pxe/clearBootImage?node=NAME             boot action := os
 *
 * NAME may be a node name or an FQDN whose first label is one
 * (`node1-2.sb8.orbit-lab.org` -> `node1-2`). Both change what a node boots
 * (`install` wipes its disk), so both need `Authorization: Bearer <token>`
 * with the admin token or the OMF token (config `omf.token`), checked by the
 * router once a route matched. Answers are small XML documents naming the
 * node and its action (no addresses); 400 bad name/image, 401 no or wrong
 * token, 404 unknown node (errors as `<ERROR code="...">`).
 */
import Router from '@koa/router';
import type { Context } from 'koa';
import { InvalidInputError } from '../../../protocol/errors.js';
import { type BootAction, type NodeName, parseImageRef, parseNodeName } from '../../../protocol/node.js';
import { OMF_CLEAR_BOOT_IMAGE_PATH, OMF_SET_BOOT_IMAGE_PATH } from '../../../protocol/api.js';
import type { NodeRecord } from '../../inventory/types.js';
import { requireAdmin } from '../auth.js';
import { queryValue } from '../body.js';
import type { HttpDeps } from '../types.js';
import { xmlElement } from '../xml.js';

/** Attribute that remembers the image an OMF script asked for. */
export const OMF_IMAGE_ATTR = 'omf.image';

/** A node name, or the first label of an FQDN when the whole does not parse. */
export function parseOmfNodeName(input: string | undefined): NodeName {
  if (input === undefined || input.trim() === '') throw new InvalidInputError('missing node (want node=NAME)');
  const s = input.trim().toLowerCase();
  const dot = s.indexOf('.');
  if (dot > 0 && s.length <= 253 && /^[a-z0-9.-]+$/.test(s)) return parseNodeName(s.slice(0, dot));
  return parseNodeName(s);
}

function answer(ctx: Context, service: string, node: NodeRecord, action: BootAction, image?: string): void {
  ctx.status = 200;
  ctx.type = 'application/xml; charset=utf-8';
  const el = xmlElement('node', { name: node.name, action, image });
  ctx.body = `<?xml version='1.0'?>\n<${service} status="OK">\n  ${el}\n</${service}>\n`;
}

export function omfRouter(deps: HttpDeps): Router {
  const { inventory } = deps;
  const router = new Router();
  router.use(requireAdmin(deps.apiToken, [deps.omfToken]));

  router.get(OMF_SET_BOOT_IMAGE_PATH, (ctx) => {
    const name = parseOmfNodeName(queryValue(ctx, 'node'));
    const rawImage = queryValue(ctx, 'image');
    const image = rawImage !== undefined && rawImage !== '' ? parseImageRef(rawImage).ref : undefined;
    inventory.requireNode(name);
    if (image !== undefined) inventory.updateAttrs(name, { [OMF_IMAGE_ATTR]: image });
    const [node] = inventory.setBootAction({ names: [name] }, 'install', 'OMF setBootImage');
    answer(ctx, 'setBootImage', node!, 'install', node!.attrs[OMF_IMAGE_ATTR]);
  });

  router.get(OMF_CLEAR_BOOT_IMAGE_PATH, (ctx) => {
    const name = parseOmfNodeName(queryValue(ctx, 'node'));
    const [node] = inventory.setBootAction({ names: [name] }, 'os', 'OMF clearBootImage');
    answer(ctx, 'clearBootImage', node!, 'os');
  });

  return router;
}
