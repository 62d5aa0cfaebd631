/**
 * The install session token on every request to the frontend: an undici
 * Agent whose requests all carry `X-Kickswarm-Session`, so kickstart, progress
 * reports, the boot flip, image and torrent downloads, getAddress and the
 * capture upload present it without each call site knowing about it.
 */
import fs from 'node:fs';
import { Agent } from 'undici';
import { InvalidInputError } from '../protocol/errors.js';
import { parseCmdline } from '../protocol/install.js';
import { CMDLINE_SESSION, SESSION_HEADER, parseSessionToken } from '../protocol/session.js';

type Headers = Agent.DispatchOptions['headers'];

function withHeader(headers: Headers, name: string, value: string): Headers {
  if (headers === undefined || headers === null) return { [name]: value };
  if (Array.isArray(headers)) return [...(headers as string[]), name, value];
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    return { ...Object.fromEntries(headers as Iterable<[string, string]>), [name]: value };
  }
  return { ...(headers as Record<string, string | string[] | undefined>), [name]: value };
}

/**
 * `agent` itself when there is no token, else the same agent (closing it
 * closes `agent`) with the session header added to every request.
 */
export function sessionAgent(agent: Agent, token: string | undefined): Agent {
  if (!token) return agent;
  const composed = agent.compose((dispatch) => (opts, handler) => dispatch({ ...opts, headers: withHeader(opts.headers, SESSION_HEADER, token) }, handler));
  // compose() answers a Proxy of `agent` whose dispatch adds the header; everything else is the agent's own.
  return composed as unknown as Agent;
}

/**
 * `--session`, else `kickswarm.session=` (or, for older capture configs,
 * `kickswarm.capture_token=`) from the kernel command line; undefined when
 * neither is there. A malformed token is an InvalidInputError.
 */
export function sessionFrom(flag: string | undefined, cmdlineFile = '/proc/cmdline'): string | undefined {
  let token = flag;
  if (token === undefined) {
    try {
      const c = parseCmdline(fs.readFileSync(cmdlineFile, 'utf8'));
      token = c[CMDLINE_SESSION] ?? c['kickswarm.capture_token'];
    } catch {
      token = undefined;
    }
  }
  if (token === undefined || token === '') return undefined;
  try {
    return parseSessionToken(token);
  } catch {
    throw new InvalidInputError(`the session token ${flag === undefined ? `in ${CMDLINE_SESSION}=` : 'given with --session'} is not 43 base64url characters`);
  }
}
