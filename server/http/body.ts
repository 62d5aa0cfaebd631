/**
 * Request input at the edge: bounded body reading (413 beyond the limit, 400
 * for bodies that are not UTF-8, not JSON or cut off) and query values. Nothing
 * here throws anything but a 4xx.
 */
import type { Context } from 'koa';
import { InvalidInputError, TooLargeError } from '../../protocol/errors.js';
import { MAX_BODY_BYTES } from '../../protocol/api.js';

/** The media type of the request without parameters, lowercase; '' when absent. */
export function mediaType(ctx: Context): string {
  return (ctx.get('content-type').split(';')[0] ?? '').trim().toLowerCase();
}

/**
 * Reads the whole request body, at most `limit` bytes (413 beyond, checked
 * against Content-Length first and then while reading).
 */
export async function readBody(ctx: Context, limit = MAX_BODY_BYTES): Promise<Buffer> {
  const declared = ctx.get('content-length');
  if (declared && /^\d+$/.test(declared) && Number(declared) > limit) {
    throw new TooLargeError(`request body larger than ${limit} bytes`, { limit });
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of ctx.req) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      size += b.length;
      if (size > limit) break;
      chunks.push(b);
    }
  } catch {
    throw new InvalidInputError('request body could not be read');
  }
  if (size > limit) throw new TooLargeError(`request body larger than ${limit} bytes`, { limit });
  return Buffer.concat(chunks);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The body as UTF-8 text (400 when it is not UTF-8). */
export async function readText(ctx: Context, limit = MAX_BODY_BYTES): Promise<string> {
  const buf = await readBody(ctx, limit);
  try {
    return utf8.decode(buf);
  } catch {
    throw new InvalidInputError('request body is not UTF-8 text');
  }
}

/** True for `application/json` and `application/<anything>+json`. */
export function isJsonMediaType(type: string): boolean {
  return type === 'application/json' || /^application\/[a-z0-9.!#$&^_-]+\+json$/.test(type);
}

/**
 * The body parsed as JSON; an empty body is `undefined`, a malformed one a
 * 400. A non-empty body must say `Content-Type: application/json`, else 415:
 * a browser sends a cross-site form POST without asking first, but never one
 * with a JSON type.
 */
export async function readJson(ctx: Context, limit = MAX_BODY_BYTES): Promise<unknown> {
  const text = await readText(ctx, limit);
  if (text.trim() === '') return undefined;
  if (!isJsonMediaType(mediaType(ctx))) ctx.throw(415, 'a JSON body needs Content-Type: application/json');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new InvalidInputError('request body is not valid JSON');
  }
}

function restringify(v: object, key: string): string {
  try {
    return JSON.stringify(v);
  } catch {
    throw new InvalidInputError(`JSON body field ${JSON.stringify(key.slice(0, 40))} is nested too deeply`);
  }
}

/**
 * The body as flat string fields: JSON objects (`application/json`) keep
 * their string values and stringify nested objects; anything else is read as
 * `application/x-www-form-urlencoded`.
 */
export async function readFields(ctx: Context, limit = MAX_BODY_BYTES): Promise<Map<string, string>> {
  const fields = new Map<string, string>();
  if (isJsonMediaType(mediaType(ctx))) {
    const v = await readJson(ctx, limit);
    if (v === undefined) return fields;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidInputError('JSON body must be an object');
    for (const [k, x] of Object.entries(v)) {
      if (typeof x === 'string') fields.set(k, x);
      else if (x !== null && typeof x === 'object') fields.set(k, restringify(x, k));
    }
    return fields;
  }
  const text = await readText(ctx, limit);
  for (const [k, x] of new URLSearchParams(text)) if (!fields.has(k)) fields.set(k, x);
  return fields;
}

/** The first value of query parameter `name`, or undefined. */
export function queryValue(ctx: Context, name: string): string | undefined {
  const v = ctx.query[name];
  if (Array.isArray(v)) return v[0];
  return typeof v === 'string' ? v : undefined;
}
