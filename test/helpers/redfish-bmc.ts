/**
 * A Redfish BMC for tests, modelled on the DMTF schema (ServiceRoot, the
 * Systems collection, ComputerSystem v1 with `Boot` and the
 * `#ComputerSystem.Reset` action). It checks what a real BMC checks: HTTP
 * Basic credentials (401), `If-Match` against the system's ETag (412),
 * property values against their `@Redfish.AllowableValues` (400 with a
 * Redfish error body), and it records every request. `mode` makes it refuse
 * every request or never answer. HTTPS with a throw-away self-signed
 * certificate made by openssl.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { tmpDir } from './tmp.js';

export interface BmcSystem {
  id: string;
  powerState: 'On' | 'Off';
  boot: { BootSourceOverrideTarget: string; BootSourceOverrideEnabled: string };
  /** Bumped by every change; the ETag is `W/"<version>"`. */
  version: number;
  resetTypes: string[];
}

export interface BmcRequest {
  method: string;
  path: string;
  body: unknown;
  ifMatch?: string;
  authorized: boolean;
}

const TARGETS = ['None', 'Pxe', 'Hdd', 'Cd', 'BiosSetup', 'UefiHttp'];
const ENABLED = ['Disabled', 'Once', 'Continuous'];

export class RedfishBmc {
  readonly requests: BmcRequest[] = [];
  readonly systems = new Map<string, BmcSystem>();
  mode: 'ok' | 'hang' = 'ok';
  private server?: https.Server;
  private readonly hung = new Set<ServerResponse>();
  private readonly certDir: string;

  constructor(
    private readonly user: string,
    private readonly password: string,
    systems: { id: string; powerState?: 'On' | 'Off'; resetTypes?: string[] }[] = [{ id: '1' }],
  ) {
    for (const s of systems) {
      this.systems.set(s.id, {
        id: s.id,
        powerState: s.powerState ?? 'On',
        boot: { BootSourceOverrideTarget: 'None', BootSourceOverrideEnabled: 'Disabled' },
        version: 1,
        resetTypes: s.resetTypes ?? ['On', 'ForceOff', 'GracefulShutdown', 'GracefulRestart', 'ForceRestart', 'PowerCycle'],
      });
    }
    this.certDir = tmpDir('kickswarm-bmc-');
  }

  /** Listens on `host`:0 and answers the base URL. */
  async start(host = '127.0.0.1'): Promise<string> {
    const key = path.join(this.certDir, 'key.pem');
    const cert = path.join(this.certDir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${host}`, '-addext', `subjectAltName=IP:${host}`], {
      stdio: 'ignore',
    });
    this.server = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (req, res) => this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, host, resolve));
    return `https://${host}:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const r of this.hung) r.destroy();
    this.hung.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server?.closeAllConnections();
    fs.rmSync(this.certDir, { recursive: true, force: true });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (raw += d));
    req.on('end', () => {
      const auth = req.headers.authorization ?? '';
      const expected = `Basic ${Buffer.from(`${this.user}:${this.password}`).toString('base64')}`;
      let body: unknown;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        body = raw;
      }
      const url = new URL(req.url ?? '/', 'https://bmc');
      const ifMatch = req.headers['if-match'];
      this.requests.push({ method: req.method ?? '', path: url.pathname, body, ifMatch, authorized: auth === expected });
      if (this.mode === 'hang') {
        this.hung.add(res);
        return;
      }
      if (auth !== expected) return this.error(res, 401, 'Base.1.8.GeneralError', 'Authentication required', { 'www-authenticate': 'Basic realm="Redfish"' });
      this.route(req.method ?? '', url.pathname.replace(/\/$/, ''), body, ifMatch, res);
    });
  }

  private route(method: string, p: string, body: unknown, ifMatch: string | undefined, res: ServerResponse): void {
    if (method === 'GET' && p === '/redfish/v1') {
      return this.json(res, 200, {
        '@odata.id': '/redfish/v1/',
        '@odata.type': '#ServiceRoot.v1_15_0.ServiceRoot',
        Id: 'RootService',
        RedfishVersion: '1.17.0',
        Systems: { '@odata.id': '/redfish/v1/Systems' },
      });
    }
    if (method === 'GET' && p === '/redfish/v1/Systems') {
      const members = [...this.systems.keys()].map((id) => ({ '@odata.id': `/redfish/v1/Systems/${id}` }));
      return this.json(res, 200, { '@odata.id': '/redfish/v1/Systems', '@odata.type': '#ComputerSystemCollection.ComputerSystemCollection', Members: members, 'Members@odata.count': members.length });
    }
    const m = /^\/redfish\/v1\/Systems\/([^/]+)(\/Actions\/ComputerSystem\.Reset)?$/.exec(p);
    const sys = m ? this.systems.get(decodeURIComponent(m[1]!)) : undefined;
    if (!m || !sys) return this.error(res, 404, 'Base.1.8.ResourceMissingAtURI', `The resource at the URI ${p} was not found.`);
    if (!m[2] && method === 'GET') return this.json(res, 200, this.render(sys), { etag: this.etag(sys) });
    if (!m[2] && method === 'PATCH') {
      if (ifMatch !== undefined && ifMatch !== this.etag(sys)) return this.error(res, 412, 'Base.1.8.PreconditionFailed', 'The ETag supplied did not match the ETag required to change this resource.');
      const boot = (body as { Boot?: Record<string, unknown> } | undefined)?.Boot;
      if (!boot || typeof boot !== 'object') return this.error(res, 400, 'Base.1.8.PropertyMissing', 'The property Boot is a required property.');
      for (const [k, allowed] of [
        ['BootSourceOverrideTarget', TARGETS],
        ['BootSourceOverrideEnabled', ENABLED],
      ] as const) {
        const v = boot[k];
        if (v !== undefined && (typeof v !== 'string' || !allowed.includes(v)))
          return this.error(res, 400, 'Base.1.8.PropertyValueNotInList', `The value ${JSON.stringify(v)} for the property ${k} is not in the list of acceptable values.`);
        if (typeof v === 'string') sys.boot[k] = v;
      }
      sys.version++;
      res.writeHead(204, { etag: this.etag(sys) }).end();
      return;
    }
    if (m[2] && method === 'POST') {
      const t = (body as { ResetType?: unknown } | undefined)?.ResetType;
      if (typeof t !== 'string' || !sys.resetTypes.includes(t))
        return this.error(res, 400, 'Base.1.8.ActionParameterValueNotInList', `The value ${JSON.stringify(t)} for the parameter ResetType is not in the list of acceptable values.`);
      if (t === 'On') sys.powerState = 'On';
      else if (t === 'ForceOff' || t === 'GracefulShutdown') sys.powerState = 'Off';
      sys.version++;
      res.writeHead(204).end();
      return;
    }
    this.error(res, 405, 'Base.1.8.OperationNotAllowed', `${method} is not allowed on ${p}.`);
  }

  private render(s: BmcSystem): Record<string, unknown> {
    const id = `/redfish/v1/Systems/${s.id}`;
    return {
      '@odata.id': id,
      '@odata.type': '#ComputerSystem.v1_20_0.ComputerSystem',
      '@odata.etag': this.etag(s),
      Id: s.id,
      Name: `System ${s.id}`,
      PowerState: s.powerState,
      Boot: { ...s.boot, 'BootSourceOverrideTarget@Redfish.AllowableValues': TARGETS, BootSourceOverrideMode: 'UEFI' },
      Actions: { '#ComputerSystem.Reset': { target: `${id}/Actions/ComputerSystem.Reset`, 'ResetType@Redfish.AllowableValues': s.resetTypes } },
    };
  }

  private etag(s: BmcSystem): string {
    return `W/"${s.version}"`;
  }

  private json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'application/json', 'odata-version': '4.0', ...headers }).end(JSON.stringify(body));
  }

  private error(res: ServerResponse, status: number, id: string, message: string, headers: Record<string, string> = {}): void {
    this.json(res, status, { error: { code: id, message, '@Message.ExtendedInfo': [{ MessageId: id, Message: message }] } }, headers);
  }
}
