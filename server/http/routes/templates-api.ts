/**
 * Profiles and templates through the admin API (the dashboard's editor):
 *
 *   GET  /api/v1/templates                 {files, status}
 *   GET  /api/v1/templates/file?path=P     {path, text}
 *   POST /api/v1/templates/preview         {path, text, node?}  -> PreviewResult (nothing saved)
 *   PUT  /api/v1/templates/file            {path, text, force?}
 *        200 SaveResult when saved; 422 {error, problems} when the edit breaks a
 *        render (file, line, message per node) and `force` is not true.
 *
 * Preview and save check every node: they run one at a time (with the reinstall
 * plan, through `serial`), in slices that let other requests through; 503 with
 * Retry-After when too many wait.
 */
import Router from '@koa/router';
import type { Middleware } from 'koa';
import { z } from 'zod';
import { API_PREFIX } from '../../../protocol/api.js';
import { InvalidInputError } from '../../../protocol/errors.js';
import { parseNodeName } from '../../../protocol/node.js';
import type { Inventory } from '../../inventory/store.js';
import type { Logger } from '../../log.js';
import { MAX_EDIT_BYTES, listEditable, previewEdit, readEditable, saveEdit } from '../../render/edit.js';
import type { ProfileStatus, RenderEnv } from '../../render/types.js';
import { Serial } from '../../slices.js';
import { queryValue, readJson } from '../body.js';
import { parseBody } from './api.js';
import { sendJson } from './fleet.js';

export const API_TEMPLATES_PATH = `${API_PREFIX}/templates`;
export const API_TEMPLATE_FILE_PATH = `${API_PREFIX}/templates/file`;
export const API_TEMPLATE_PREVIEW_PATH = `${API_PREFIX}/templates/preview`;

const text = z.string().max(MAX_EDIT_BYTES);
const PreviewBody = z.object({ path: z.string().max(300), text, node: z.string().max(255).optional() }).strict();
const SaveBody = z.object({ path: z.string().max(300), text, force: z.boolean().optional() }).strict();

export interface TemplateRouteDeps {
  /** Who may call these routes (router-level, run once a route matched; ../api-auth.ts). */
  auth?: Middleware;
  dataDir: string;
  inventory: Inventory;
  renderer: { renderEnv(): RenderEnv; reload(): ProfileStatus; status(): ProfileStatus };
  log: Logger;
  /** Runs the every-node jobs one at a time (shared with the reinstall plan); default: one of its own. */
  serial?: Serial;
}

const BODY_LIMIT = MAX_EDIT_BYTES * 2 + 4096;

export function templateRoutes(deps: TemplateRouteDeps): Router {
  const { dataDir, inventory, renderer, log } = deps;
  const serial = deps.serial ?? new Serial('checking every node');
  const router = new Router();
  if (deps.auth) router.use(deps.auth);

  router.get(API_TEMPLATES_PATH, (ctx) => {
    sendJson(ctx, { files: listEditable(dataDir), status: renderer.status() });
  });

  router.get(API_TEMPLATE_FILE_PATH, (ctx) => {
    const p = queryValue(ctx, 'path');
    if (!p) throw new InvalidInputError('path=FILE is required');
    sendJson(ctx, { path: p, text: readEditable(dataDir, p) });
  });

  router.post(API_TEMPLATE_PREVIEW_PATH, async (ctx) => {
    const b = parseBody(PreviewBody, await readJson(ctx, BODY_LIMIT));
    const node = b.node ? inventory.requireNode(parseNodeName(b.node)) : undefined;
    sendJson(ctx, await serial.run(() => previewEdit(dataDir, renderer.renderEnv(), inventory.listNodes(), { path: b.path, text: b.text }, node)));
  });

  router.put(API_TEMPLATE_FILE_PATH, async (ctx) => {
    const b = parseBody(SaveBody, await readJson(ctx, BODY_LIMIT));
    const r = await serial.run(() => saveEdit(dataDir, renderer.renderEnv(), inventory.listNodes(), { path: b.path, text: b.text }, b.force === true));
    if (!r.saved) {
      ctx.status = 422;
      const [first] = r.problems;
      ctx.body = {
        error: {
          code: 'template_error',
          message: first ? `refused: ${r.problems.length} render problem(s), first ${first.file}${first.line !== undefined ? `:${first.line}` : ''}: ${first.message}` : 'refused',
        },
        problems: r.problems,
      };
      return;
    }
    log.info({ path: r.path, forced: r.forced, problems: r.problems.length }, r.forced ? 'template saved although it breaks renders' : 'template saved');
    const status = renderer.reload();
    sendJson(ctx, { ...r, status });
  });

  return router;
}
