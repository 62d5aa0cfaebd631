/**
 * Talks to the frontend for an installing node: fetches its kickstart, reports
 * progress, flips its boot action. Requests go out from the node's own address
 * (`localAddress`) so the frontend identifies the node by source IP, as on a
 * real network. Transient failures are retried until a deadline; answers that
 * will not change (403, 404) stop at once with the frontend's own words.
 */
import { Agent, type Dispatcher, request } from 'undici';
import { ForbiddenError, InvalidInputError, NotFoundError, UnavailableError } from '../protocol/errors.js';
import { SECRETS_PATH, SESSION_HEADER, type SecretFile, parseSecretsResponse } from '../protocol/session.js';
import { type InstallReport, REPORT_PATH } from '../protocol/install.js';
import { KICKSTART_PATH, PROVISIONING_MAC_HEADER_PREFIX, SETPXEBOOT_PATH } from '../protocol/api.js';
import type { Mac } from '../protocol/node.js';
import type { Logger } from './log.js';
import { sessionAgent } from './session.js';

export interface FrontendClientOptions {
  /** e.g. `http://10.1.1.1:8080` */
  frontend: string;
  /** The node's own address to send from (127.0.x.y when simulating nodes on one machine). */
  localAddress?: string;
  /** Sent as `X-RHN-Provisioning-MAC-0: eth0 <mac>`. */
  mac?: Mac;
  /** The install session token, sent as X-Kickswarm-Session with every request made through `dispatcher`. */
  session?: string;
  log: Logger;
  /** How long to keep retrying a fetch before giving up (seconds). */
  deadlineSeconds?: number;
  /** Longest single wait between tries (seconds). */
  maxBackoffSeconds?: number;
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** POSTs one install report to report.cgi of `frontend` through `dispatcher`; the answer's status and body (network errors throw). */
export async function postInstallReport(frontend: string, dispatcher: Dispatcher, r: InstallReport, timeoutMs: number): Promise<{ status: number; body: string }> {
  const res = await request(frontend + REPORT_PATH, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(r),
    dispatcher,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  return { status: res.statusCode, body: await res.body.text() };
}

export class FrontendClient {
  readonly frontend: string;
  readonly dispatcher: Agent;
  /** The node's own address requests go out from, when one was given. */
  readonly localAddress: string | undefined;
  /** The headers every request to the frontend carries (the session token, when there is one). */
  readonly sessionHeaders: Record<string, string>;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly opts: FrontendClientOptions) {
    this.frontend = opts.frontend.replace(/\/+$/, '');
    this.dispatcher = sessionAgent(new Agent({ ...(opts.localAddress ? { localAddress: opts.localAddress } : {}), keepAliveTimeout: 4000 }), opts.session);
    this.localAddress = opts.localAddress;
    this.sessionHeaders = opts.session ? { [SESSION_HEADER]: opts.session } : {};
    this.sleep = opts.sleep ?? defaultSleep;
  }

  async close(): Promise<void> {
    await this.dispatcher.close().catch(() => undefined);
  }

  /**
   * The node's kickstart. 503 waits `Retry-After`; connection errors and 5xx
   * back off (1 s doubling, capped) until the deadline; 403/404 throw at once.
   */
  async fetchKickstart(): Promise<string> {
    const headers: Record<string, string> = {};
    if (this.opts.mac) headers[`${PROVISIONING_MAC_HEADER_PREFIX}0`] = `eth0 ${this.opts.mac}`;
    return this.retrying<string>('kickstart', async () => {
      const res = await request(this.frontend + KICKSTART_PATH, { headers, dispatcher: this.dispatcher, headersTimeout: 30_000, bodyTimeout: 30_000 });
      const body = await res.body.text();
      if (res.statusCode === 200) return { done: body };
      const why = body.trim().slice(0, 300);
      if (res.statusCode === 404) throw new NotFoundError(`the frontend does not know this node: ${why}`);
      if (res.statusCode === 403) throw new ForbiddenError(`the frontend refused the kickstart: ${why}`);
      if (res.statusCode === 503) {
        const after = Number(res.headers['retry-after']);
        return { retryAfterMs: Number.isFinite(after) && after > 0 ? Math.min(after, 300) * 1000 : undefined, why: `busy (503): ${why}` };
      }
      return { retryAfterMs: undefined, why: `HTTP ${res.statusCode}: ${why}` };
    });
  }

  /** Sends one progress report; failures are logged, never thrown (progress is best effort). */
  async report(r: InstallReport): Promise<void> {
    try {
      const res = await this.postReport(r);
      if (res.status >= 300) this.opts.log.warn({ status: res.status, body: res.body.slice(0, 200) }, 'progress report refused');
    } catch (e) {
      this.opts.log.warn({ err: (e as Error).message }, 'progress report failed');
    }
  }

  /**
   * Sends a report that must not be lost (the outcome of an install the node
   * leaves for its OS next): retried like setPxeboot while the frontend is
   * unreachable or answers 5xx, until the deadline. A 4xx refusal or the
   * deadline is logged, never thrown.
   */
  async reportSurely(r: InstallReport): Promise<void> {
    try {
      await this.retrying<undefined>('report', async () => {
        const res = await this.postReport(r);
        if (res.status < 300) return { done: undefined };
        const why = `HTTP ${res.status}: ${res.body.trim().slice(0, 200)}`;
        if (res.status < 500 && res.status !== 408 && res.status !== 429) throw new InvalidInputError(`report refused: ${why}`);
        return { retryAfterMs: undefined, why };
      });
    } catch (e) {
      this.opts.log.warn({ err: (e as Error).message }, 'final report not delivered');
    }
  }

  private postReport(r: InstallReport): Promise<{ status: number; body: string }> {
    return postInstallReport(this.frontend, this.dispatcher, r, 10_000);
  }

  /**
   * The profile's secrets for this install (once per session). 403 and 404
   * throw at once; the frontend being unreachable is retried until the deadline.
   */
  async fetchSecrets(): Promise<SecretFile[]> {
    return this.retrying<SecretFile[]>('secrets', async () => {
      const res = await request(this.frontend + SECRETS_PATH, { dispatcher: this.dispatcher, headersTimeout: 30_000, bodyTimeout: 30_000 });
      const body = await res.body.text();
      if (res.statusCode === 200) {
        let json: unknown;
        try {
          json = JSON.parse(body);
        } catch {
          throw new InvalidInputError('the secrets answer is not JSON');
        }
        return { done: parseSecretsResponse(json).files };
      }
      const why = body.trim().slice(0, 300);
      if (res.statusCode === 403) throw new ForbiddenError(`the frontend refused the secrets: ${why}`);
      if (res.statusCode === 404) throw new NotFoundError(`the frontend does not know this node: ${why}`);
      return { retryAfterMs: undefined, why: `HTTP ${res.statusCode}: ${why}` };
    });
  }

  /** Flips this node's boot action (retried until the deadline; the flip must not be lost). */
  async setBootAction(action: 'os' | 'install'): Promise<void> {
    await this.retrying<undefined>('setPxeboot', async () => {
      const res = await request(`${this.frontend}${SETPXEBOOT_PATH}?action=${action}`, { method: 'POST', dispatcher: this.dispatcher });
      const body = await res.body.text();
      if (res.statusCode === 200) return { done: undefined };
      if (res.statusCode === 404 || res.statusCode === 400) throw new NotFoundError(`setPxeboot refused: ${body.trim().slice(0, 300)}`);
      if (res.statusCode === 403) throw new ForbiddenError(`setPxeboot refused: ${body.trim().slice(0, 300)}`);
      return { retryAfterMs: undefined, why: `HTTP ${res.statusCode}: ${body.trim().slice(0, 200)}` };
    });
  }

  private async retrying<T>(what: string, attempt: () => Promise<{ done: T } | { retryAfterMs?: number; why: string }>): Promise<T> {
    const deadline = Date.now() + (this.opts.deadlineSeconds ?? 600) * 1000;
    const cap = (this.opts.maxBackoffSeconds ?? 30) * 1000;
    let backoff = 1000;
    for (;;) {
      let wait: number;
      let why: string;
      try {
        const r = await attempt();
        if ('done' in r) return r.done;
        wait = r.retryAfterMs ?? backoff;
        why = r.why;
      } catch (e) {
        if (e instanceof NotFoundError || e instanceof ForbiddenError || e instanceof InvalidInputError) throw e;
        wait = backoff;
        why = (e as Error).message;
      }
      backoff = Math.min(backoff * 2, cap);
      if (Date.now() + wait > deadline) throw new UnavailableError(`${what}: gave up at the deadline; last error: ${why}`);
      this.opts.log.warn({ what, why, retryInMs: wait }, 'frontend not ready; retrying');
      await this.sleep(wait);
    }
  }
}
