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
  MissingParam: 'M_MISSING_PARAM',
  TooLarge: 'M_TOO_LARGE',
  LimitExceeded: 'M_LIMIT_EXCEEDED',
  UserInUse: 'M_USER_IN_USE',
  RoomInUse: 'M_ROOM_IN_USE',
  Exclusive: 'M_EXCLUSIVE',
  /** Ours (the spec reserves M_ for itself): the network room or the Matrix room is bridged already. */
  AlreadyLinked: 'ORG.MATRIX_APPSERVICE_LAMBDA.ALREADY_LINKED',
  /** Ours: the network refused to link its room (its reason in `error`). */
  NetworkRefused: 'ORG.MATRIX_APPSERVICE_LAMBDA.NETWORK_REFUSED',
  /** Ours: the bridge bot is not in the room and cannot join it (invite it first). */
  BotNotInRoom: 'ORG.MATRIX_APPSERVICE_LAMBDA.BOT_NOT_IN_ROOM',
} as const;

export type ErrCode = (typeof ErrCode)[keyof typeof ErrCode];

export class MatrixError extends Error {
  constructor(
    readonly status: number,
    readonly errcode: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
    /** Whether another try later may succeed; by default rate limits and 5xx. */
    private readonly retryable?: boolean,
  ) {
    super(message);
    this.name = 'MatrixError';
  }

  get body(): Record<string, unknown> {
    return { ...this.extra, errcode: this.errcode, error: this.message };
  }

  /** True for failures worth another try later: rate limits, server errors, timeouts. */
  get transient(): boolean {
    return this.retryable ?? (this.status === 429 || this.status >= 500);
  }
}

/** What the homeserver answered, or 0 when it did not answer at all. */
export interface HomeserverAnswer {
  status: number;
  errcode: string;
}

/**
 * The homeserver's answer to one of our CS API calls is not our answer to whoever called us: a
 * 401 from it means our as_token is wrong (a deployment mistake the HS and the network should
 * retry past once it is fixed, never "your request was unauthorised"), a 5xx is our 503. This
 * table is the one place that decides; `hs` keeps what the homeserver said, for the use cases.
 */
export function answerFor(hs: HomeserverAnswer): { status: number; errcode: ErrCode; transient: boolean; why: string } {
  const { status } = hs;
  if (status === 0) return { status: 503, errcode: ErrCode.Unknown, transient: true, why: 'the homeserver did not answer' };
  if (status === 401) {
    return {
      status: 500,
      errcode: ErrCode.Unknown,
      transient: true,
      why: 'the homeserver does not accept our as_token: AS_TOKEN (or AS_TOKEN_PARAM) must be the as_token of the registration the homeserver has',
    };
  }
  if (status === 403) return { status: 403, errcode: ErrCode.Forbidden, transient: false, why: 'the homeserver refused' };
  if (status === 404) return { status: 404, errcode: ErrCode.NotFound, transient: false, why: 'the homeserver does not know it' };
  if (status === 413) return { status: 413, errcode: ErrCode.TooLarge, transient: false, why: 'the homeserver refused it as too large' };
  if (status === 429) return { status: 503, errcode: ErrCode.Unknown, transient: true, why: 'the homeserver is rate-limiting us' };
  if (status >= 500) return { status: 503, errcode: ErrCode.Unknown, transient: true, why: 'the homeserver failed' };
  return { status: 400, errcode: ErrCode.Unknown, transient: false, why: 'the homeserver refused the request' };
}

/** A CS API call the homeserver refused or failed; status and errcode are our answer (answerFor). */
export class HomeserverError extends MatrixError {
  /** The setting to fix when this is our misconfiguration, not a passing failure. */
  readonly misconfigured?: string;

  constructor(
    readonly hs: HomeserverAnswer,
    /** e.g. `PUT /_matrix/client/v3/rooms/…/send/…: User not in room (HTTP 403 M_FORBIDDEN)` */
    readonly detail: string,
  ) {
    const ours = answerFor(hs);
    super(ours.status, ours.errcode, `${ours.why}: ${detail}`, {}, ours.transient);
    this.name = 'HomeserverError';
    if (hs.status === 401) this.misconfigured = 'AS_TOKEN';
  }
}

export const isHomeserverError = (e: unknown, errcode?: string): e is HomeserverError =>
  e instanceof HomeserverError && (errcode === undefined || e.hs.errcode === errcode);

export const isMatrixError = (e: unknown, errcode?: string): e is MatrixError =>
  e instanceof MatrixError && (errcode === undefined || e.errcode === errcode);

/** 400: a request (a body field, a path) we cannot take. */
export const badJson = (message: string) => new MatrixError(400, ErrCode.BadJson, message);
export const notJson = (message: string) => new MatrixError(400, ErrCode.NotJson, message);
export const invalidParam = (message: string) => new MatrixError(400, ErrCode.InvalidParam, message);
export const missingParam = (message: string) => new MatrixError(400, ErrCode.MissingParam, message);
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
