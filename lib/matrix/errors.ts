/**
 * Matrix errors: what the HS told us, or what we answer. Their body is `{errcode, error}`.
 * One vocabulary: the errcodes as constants and a small set of factories (as mautrix-go's
 * `mautrix.MNotFound.WithMessage`), so an answer never depends on a string typed by hand.
 */

/** The errcodes this AS sends or reacts to (https://spec.matrix.org/v1.11/client-server-api/#standard-error-response). */
export const ErrCode = {
  Unknown: 'M_UNKNOWN',
  Forbidden: 'M_FORBIDDEN',
  Unauthorized: 'M_UNAUTHORIZED',
  UnknownToken: 'M_UNKNOWN_TOKEN',
  MissingToken: 'M_MISSING_TOKEN',
  NotFound: 'M_NOT_FOUND',
  Unrecognized: 'M_UNRECOGNIZED',
  NotJson: 'M_NOT_JSON',
  BadJson: 'M_BAD_JSON',
  InvalidParam: 'M_INVALID_PARAM',
  TooLarge: 'M_TOO_LARGE',
  LimitExceeded: 'M_LIMIT_EXCEEDED',
  UserInUse: 'M_USER_IN_USE',
  RoomInUse: 'M_ROOM_IN_USE',
  Exclusive: 'M_EXCLUSIVE',
} as const;

export type ErrCode = (typeof ErrCode)[keyof typeof ErrCode];

export class MatrixError extends Error {
  constructor(
    readonly status: number,
    /** One of ErrCode when we make it; whatever the homeserver said when it comes from there. */
    readonly errcode: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'MatrixError';
  }

  get body(): Record<string, unknown> {
    return { ...this.extra, errcode: this.errcode, error: this.message };
  }

  /** True for failures worth another try later: rate limits, server errors, timeouts. */
  get transient(): boolean {
    return this.status === 429 || this.status >= 500;
  }
}

export const isMatrixError = (e: unknown, errcode?: string): e is MatrixError =>
  e instanceof MatrixError && (errcode === undefined || e.errcode === errcode);

/** 400: a request (a body field, a path) we cannot take. */
export const badJson = (message: string) => new MatrixError(400, ErrCode.BadJson, message);
export const notJson = (message: string) => new MatrixError(400, ErrCode.NotJson, message);
export const invalidParam = (message: string) => new MatrixError(400, ErrCode.InvalidParam, message);
/** 401: no credentials at all. */
export const unauthorized = (message: string) => new MatrixError(401, ErrCode.Unauthorized, message);
/** 403: credentials that are wrong, or a thing not allowed. */
export const forbidden = (message: string) => new MatrixError(403, ErrCode.Forbidden, message);
export const notFound = (message: string) => new MatrixError(404, ErrCode.NotFound, message);
/** 404 for an unknown endpoint, 405 for a known one called with the wrong method. */
export const unrecognized = (message: string, status: 404 | 405 = 404) => new MatrixError(status, ErrCode.Unrecognized, message);
export const tooLarge = (message: string) => new MatrixError(413, ErrCode.TooLarge, message);
/** 500: our fault; the message says where to look, never what went wrong inside. */
export const internalError = (message: string) => new MatrixError(500, ErrCode.Unknown, message);
/** The upstream (HS, network or state store) did not answer in time or failed: the caller may retry. */
export const unavailable = (message: string) => new MatrixError(503, ErrCode.Unknown, message);
