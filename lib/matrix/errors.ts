/** A Matrix error: what the HS told us, or what we answer. Its body is `{errcode, error}`. */
export class MatrixError extends Error {
  constructor(
    readonly status: number,
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

export const badRequest = (errcode: string, message: string) => new MatrixError(400, errcode, message);
export const notFound = (message: string) => new MatrixError(404, 'M_NOT_FOUND', message);
/** The upstream (HS or network) did not answer in time or failed: the caller may retry. */
export const unavailable = (message: string) => new MatrixError(503, 'M_UNKNOWN', message);
