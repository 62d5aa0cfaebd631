/**
 * Named error classes with stable `code`s, shared by the frontend and the node
 * installer. Only the HTTP error middleware maps them to statuses and only the
 * `main.ts` files map them to exit codes; everything else just throws them.
 */
export type ErrorCode =
  'invalid_input' | 'not_found' | 'conflict' | 'forbidden' | 'unauthorized' | 'busy' | 'template_error' | 'corrupt_image' | 'unavailable' | 'too_large' | 'method_not_allowed' | 'internal';

export class KickswarmError extends Error {
  readonly code: ErrorCode;
  /** Extra machine-readable detail (never secrets). */
  readonly detail?: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, detail?: Record<string, unknown>) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.detail = detail;
  }
}

/** Input that does not parse: a malformed MAC, IP, name, packet, query. */
export class InvalidInputError extends KickswarmError {
  constructor(message: string, detail?: Record<string, unknown>) {
    super('invalid_input', message, detail);
  }
}

export class NotFoundError extends KickswarmError {
  constructor(message: string, detail?: Record<string, unknown>) {
    super('not_found', message, detail);
  }
}

/** A uniqueness clash: the message names the conflicting object. */
export class ConflictError extends KickswarmError {
  constructor(message: string, detail?: Record<string, unknown>) {
    super('conflict', message, detail);
  }
}

export class ForbiddenError extends KickswarmError {
  constructor(message: string, detail?: Record<string, unknown>) {
    super('forbidden', message, detail);
  }
}

export class UnauthorizedError extends KickswarmError {
  constructor(message = 'a valid bearer token is required') {
    super('unauthorized', message);
  }
}

/** Too much work in flight; `retryAfterSeconds` tells the client when to come back. */
export class BusyError extends KickswarmError {
  readonly retryAfterSeconds: number;
  constructor(message: string, retryAfterSeconds: number) {
    super('busy', message, { retryAfterSeconds });
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** A template or profile that does not compile or render; names file and line. */
export class TemplateError extends KickswarmError {
  readonly file: string;
  readonly line?: number;
  constructor(file: string, line: number | undefined, message: string) {
    super('template_error', `${file}${line !== undefined ? `:${line}` : ''}: ${message}`, { file, line });
    this.file = file;
    this.line = line;
  }
}

/** A chunked image that fails verification; names the chunk when known. */
export class CorruptImageError extends KickswarmError {
  readonly chunk?: number;
  constructor(message: string, chunk?: number) {
    super('corrupt_image', chunk !== undefined ? `chunk ${chunk}: ${message}` : message, { chunk });
    this.chunk = chunk;
  }
}

/** A dependency (frontend, tracker, peer, disk) that cannot be reached or used now. */
export class UnavailableError extends KickswarmError {
  constructor(message: string, detail?: Record<string, unknown>) {
    super('unavailable', message, detail);
  }
}

/** A body or upload beyond a configured size limit. */
export class TooLargeError extends KickswarmError {
  constructor(message: string, detail?: Record<string, unknown>) {
    super('too_large', message, detail);
  }
}

/** A route that exists but does not take this method. */
export class MethodNotAllowedError extends KickswarmError {
  constructor(message = 'method not allowed', detail?: Record<string, unknown>) {
    super('method_not_allowed', message, detail);
  }
}

/**
 * A delivery method that cannot be used for this install (no multicast
 * session, no data for its timeout, a bad getAddress answer): the installer
 * falls back to its next method. `reason` is a short stable word.
 */
export class FallbackError extends UnavailableError {
  readonly reason: string;
  constructor(message: string, reason: string, detail?: Record<string, unknown>) {
    super(message, { reason, ...detail });
    this.reason = reason;
  }
}

export function isKickswarmError(e: unknown): e is KickswarmError {
  return e instanceof KickswarmError;
}
