/**
 * The `redfish` power driver: the DMTF Redfish REST API of the node's BMC.
 *
 * Node attributes: `redfish.host` (`host`, `host:port` or an `https://` /
 * `http://` URL; default scheme https), `redfish.user`, `redfish.password`
 * (HTTP Basic auth; never logged or put in an error), optional
 * `redfish.system` (the ComputerSystem's path, e.g. `/redfish/v1/Systems/1`;
 * default: the only member of `/redfish/v1/Systems`) and `redfish.insecure`
 * (`true` accepts a BMC's self-signed certificate; the default verifies it).
 *
 * `cycle`, for a reinstall: PATCH the system's `Boot` to
 * `BootSourceOverrideTarget: Pxe`, `BootSourceOverrideEnabled: Once` (with
 * `If-Match` when the BMC gives an ETag), then `ComputerSystem.Reset`:
 * `On` when the system is off, else the first of ForceRestart, PowerCycle,
 * GracefulRestart that the BMC allows. Every request has a timeout; answers
 * are read up to 1 MiB.
 */
import type { Dispatcher } from 'undici';
import { InvalidInputError, UnavailableError } from '../../protocol/errors.js';
import type { NodeRecord } from '../inventory/types.js';
import { attr, checkHost } from './power-exec.js';
import type { PowerDriver, PowerState } from './power-types.js';

export interface RedfishOptions {
  /** Per HTTP request, ms. */
  timeoutMs: number;
}

const MAX_BODY = 1 << 20;
const RESTART_PREFERENCE = ['ForceRestart', 'PowerCycle', 'GracefulRestart'];

interface Bmc {
  node: NodeRecord;
  base: string;
  auth: string;
  insecure: boolean;
}

type Json = Record<string, unknown>;

function bmcOf(node: NodeRecord): Bmc {
  const raw = attr(node, 'redfish.host', 'redfish');
  let url: URL;
  try {
    url = new URL(/^https?:\/\//i.test(raw) ? raw : `https://${raw}`);
  } catch {
    throw new InvalidInputError(`node ${node.name}: attribute redfish.host ${JSON.stringify(raw.slice(0, 60))} is not a host or URL`, { node: node.name, attr: 'redfish.host' });
  }
  checkHost(node, 'redfish.host', url.hostname);
  const user = attr(node, 'redfish.user', 'redfish');
  const password = attr(node, 'redfish.password', 'redfish');
  const insecure = /^(1|true|yes)$/i.test(node.attrs['redfish.insecure']?.trim() ?? '');
  return { node, base: url.origin, auth: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`, insecure };
}

function systemPath(node: NodeRecord): string | undefined {
  const p = node.attrs['redfish.system']?.trim();
  if (p === undefined || p === '') return undefined;
  if (!/^\/redfish\/v1\/Systems\/[A-Za-z0-9._~%:@-]+\/?$/.test(p)) {
    throw new InvalidInputError(`node ${node.name}: attribute redfish.system must be a path like /redfish/v1/Systems/1, not ${JSON.stringify(p.slice(0, 60))}`, {
      node: node.name,
      attr: 'redfish.system',
    });
  }
  return p;
}

/** undici, loaded on the first request (commands that never talk to a BMC do not pay for it). */
let undici: Promise<typeof import('undici')> | undefined;
const loadUndici = (): Promise<typeof import('undici')> => (undici ??= import('undici'));

export function redfishDriver(o: RedfishOptions): PowerDriver {
  const agents = new Map<boolean, Dispatcher>();
  const agent = async (insecure: boolean): Promise<Dispatcher> => {
    const { Agent } = await loadUndici();
    let a = agents.get(insecure);
    if (!a) {
      a = new Agent({ connect: { rejectUnauthorized: !insecure, timeout: o.timeoutMs }, headersTimeout: o.timeoutMs, bodyTimeout: o.timeoutMs });
      agents.set(insecure, a);
    }
    return a;
  };

  /** One request; answers the JSON body (or {}) and the ETag. Any failure is one UnavailableError line. */
  const call = async (b: Bmc, method: 'GET' | 'PATCH' | 'POST', path: string, body?: Json, etag?: string): Promise<{ json: Json; etag?: string }> => {
    const what = `redfish ${method} ${b.base}${path}`;
    const fail = (why: string): UnavailableError => new UnavailableError(`node ${b.node.name}: ${what} failed: ${why}`, { node: b.node.name });
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), o.timeoutMs);
    try {
      const { request } = await loadUndici();
      const res = await request(`${b.base}${path}`, {
        method,
        dispatcher: await agent(b.insecure),
        signal: ac.signal,
        headers: {
          authorization: b.auth,
          accept: 'application/json',
          'odata-version': '4.0',
          ...(body ? { 'content-type': 'application/json' } : {}),
          ...(etag ? { 'if-match': etag } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      });
      let size = 0;
      const parts: Buffer[] = [];
      for await (const c of res.body) {
        size += (c as Buffer).length;
        if (size > MAX_BODY) {
          res.body.destroy();
          throw fail(`answer larger than ${MAX_BODY} bytes`);
        }
        parts.push(c as Buffer);
      }
      const text = Buffer.concat(parts).toString('utf8');
      if (res.statusCode === 401 || res.statusCode === 403) throw fail(`HTTP ${res.statusCode}: the BMC refused the credentials in redfish.user/redfish.password`);
      if (res.statusCode >= 400) throw fail(`HTTP ${res.statusCode}${redfishMessage(text)}`);
      let json: Json = {};
      if (text.trim() !== '') {
        try {
          const v: unknown = JSON.parse(text);
          if (v && typeof v === 'object' && !Array.isArray(v)) json = v as Json;
        } catch {
          if (method === 'GET') throw fail('the answer is not JSON');
        }
      }
      const tag = res.headers.etag;
      return { json, etag: (Array.isArray(tag) ? tag[0] : tag) ?? (typeof json['@odata.etag'] === 'string' ? json['@odata.etag'] : undefined) };
    } catch (err) {
      if (err instanceof UnavailableError) throw err;
      if (ac.signal.aborted) throw fail(`no answer within ${Math.round(o.timeoutMs / 1000)} s`);
      const e = err as Error & { code?: string };
      throw fail(e.code ? `${e.code}${e.message && !e.message.includes(e.code) ? ` (${e.message})` : ''}` : e.message);
    } finally {
      clearTimeout(timer);
    }
  };

  const findSystem = async (b: Bmc): Promise<string> => {
    const given = systemPath(b.node);
    if (given) return given.replace(/\/$/, '');
    const { json } = await call(b, 'GET', '/redfish/v1/Systems');
    const members = Array.isArray(json.Members) ? json.Members : [];
    const ids = members.map((m) => (m && typeof m === 'object' ? (m as Json)['@odata.id'] : undefined)).filter((x): x is string => typeof x === 'string');
    if (ids.length === 1 && ids[0]!.startsWith('/redfish/v1/Systems/')) return ids[0]!.replace(/\/$/, '');
    throw new UnavailableError(`node ${b.node.name}: the BMC at ${b.base} lists ${ids.length} systems; set attribute redfish.system to one of: ${ids.slice(0, 8).join(' ') || '(none)'}`, {
      node: b.node.name,
    });
  };

  const powerState = (sys: Json): PowerState => {
    const s = String(sys.PowerState ?? '');
    return /^on$|^poweringoff$/i.test(s) ? 'on' : /^off$|^poweringon$/i.test(s) ? 'off' : 'unknown';
  };

  const reset = async (b: Bmc, path: string, sys: Json, choose: (allowed: string[] | undefined) => string): Promise<void> => {
    const actions = (sys.Actions ?? {}) as Json;
    const action = (actions['#ComputerSystem.Reset'] ?? {}) as Json;
    const target = typeof action.target === 'string' && action.target.startsWith('/redfish/') ? action.target : `${path}/Actions/ComputerSystem.Reset`;
    const allowed = Array.isArray(action['ResetType@Redfish.AllowableValues']) ? (action['ResetType@Redfish.AllowableValues'] as unknown[]).map(String) : undefined;
    await call(b, 'POST', target, { ResetType: choose(allowed) });
  };

  const need = (b: Bmc, allowed: string[] | undefined, wanted: string): string => {
    if (allowed && !allowed.includes(wanted)) {
      throw new UnavailableError(`node ${b.node.name}: the BMC at ${b.base} does not allow ResetType ${wanted} (allows ${allowed.join(', ')})`, { node: b.node.name });
    }
    return wanted;
  };

  const withSystem = async <T>(node: NodeRecord, f: (b: Bmc, path: string, sys: Json, etag?: string) => Promise<T>): Promise<T> => {
    const b = bmcOf(node);
    const path = await findSystem(b);
    const { json, etag } = await call(b, 'GET', path);
    return f(b, path, json, etag);
  };

  return {
    name: 'redfish',
    manual: false,
    cycle: (node) =>
      withSystem(node, async (b, path, sys, etag) => {
        await call(b, 'PATCH', path, { Boot: { BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' } }, etag);
        const off = powerState(sys) === 'off';
        await reset(b, path, sys, (allowed) => {
          if (off) return need(b, allowed, 'On');
          const pick = allowed ? RESTART_PREFERENCE.find((t) => allowed.includes(t)) : RESTART_PREFERENCE[0];
          if (!pick) throw new UnavailableError(`node ${b.node.name}: the BMC at ${b.base} allows no restart (allows ${allowed!.join(', ')})`, { node: b.node.name });
          return pick;
        });
      }),
    status: (node) => withSystem(node, async (_b, _p, sys) => powerState(sys)),
    on: (node) => withSystem(node, (b, path, sys) => reset(b, path, sys, (allowed) => need(b, allowed, 'On'))),
    off: (node) => withSystem(node, (b, path, sys) => reset(b, path, sys, (allowed) => need(b, allowed, 'ForceOff'))),
    async close() {
      await Promise.all([...agents.values()].map((a) => a.close()));
      agents.clear();
    },
  };
}

/** The first Redfish extended-error message of a failed answer, if any (` : <message>`). */
function redfishMessage(text: string): string {
  try {
    const v = JSON.parse(text) as { error?: { message?: unknown; '@Message.ExtendedInfo'?: { Message?: unknown }[] } };
    const m = v.error?.['@Message.ExtendedInfo']?.[0]?.Message ?? v.error?.message;
    return typeof m === 'string' ? `: ${m.slice(0, 200)}` : '';
  } catch {
    return '';
  }
}
