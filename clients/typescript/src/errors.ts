/** Every failure the kit reports: the API's error envelope, API Gateway's own bodies, the network. */

/** API Gateway answers these itself, with `{"message": …}` and no `code` or `error`. */
const GATEWAY_NAMES: Record<number, string> = {
  401: "gateway_unauthorized", // no Authorization header on a guarded route
  403: "gateway_forbidden", // the authorizer said No (an expired token included)
  404: "gateway_not_found", // no route matches
  413: "gateway_payload_too_large",
  429: "gateway_throttled",
  500: "gateway_error",
  502: "gateway_bad_response",
  503: "gateway_unavailable",
  504: "gateway_timeout",
};

export interface FieldError {
  field: string;
  message: string;
}

export class ApiError extends Error {
  override readonly name = "ApiError";
  /** The HTTP status; 0 when no answer came (network, timeout, abort). */
  readonly status: number;
  /** The envelope's `code` (the status again), or the status for bodies without one. */
  readonly code: number;
  /** The stable machine-readable name: branch on this, never on `message`. */
  readonly error: string;
  /** Field errors of a 422, else null. */
  readonly data: FieldError[] | null;
  /** True when API Gateway answered itself (no envelope). */
  readonly gateway: boolean;
  readonly requestId: string | null;
  /** Seconds from a 429's Retry-After. */
  readonly retryAfter: number | null;

  constructor(init: {
    status: number;
    error: string;
    message: string;
    code?: number;
    data?: FieldError[] | null;
    gateway?: boolean;
    requestId?: string | null;
    retryAfter?: number | null;
    cause?: unknown;
  }) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.code = init.code ?? init.status;
    this.error = init.error;
    this.data = init.data ?? null;
    this.gateway = init.gateway ?? false;
    this.requestId = init.requestId ?? null;
    this.retryAfter = init.retryAfter ?? null;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The error an answer with a non-2xx status stands for, whatever its body. */
export function errorFromBody(status: number, body: unknown, headers?: Headers): ApiError {
  const requestId = headers?.get("x-request-id") ?? null;
  const retry = headers?.get("retry-after");
  const retryAfter = retry != null && /^\d+$/.test(retry) ? Number(retry) : null;
  if (isRecord(body) && typeof body.error === "string") {
    const data = Array.isArray(body.data) ? (body.data as FieldError[]) : null;
    return new ApiError({
      status,
      code: typeof body.code === "number" ? body.code : status,
      error: body.error,
      message: typeof body.message === "string" ? body.message : body.error,
      data,
      requestId,
      retryAfter,
    });
  }
  if (isRecord(body) && typeof body.message === "string" && Object.keys(body).length === 1) {
    const error = GATEWAY_NAMES[status] ?? `gateway_${status}`;
    return new ApiError({ status, error, message: body.message, gateway: true, requestId, retryAfter });
  }
  return new ApiError({ status, error: "unexpected_response", message: `HTTP ${status}`, requestId, retryAfter });
}

/** A Socket.IO acknowledgement in the error envelope, or null when it is a success. */
export function errorFromAck(ack: unknown): ApiError | null {
  if (isRecord(ack) && typeof ack.error === "string") {
    const status = typeof ack.code === "number" ? ack.code : 500;
    return errorFromBody(status, ack);
  }
  return null;
}

export function networkError(cause: unknown): ApiError {
  const aborted = isRecord(cause) && cause.name === "AbortError";
  return new ApiError({
    status: 0,
    error: aborted ? "aborted" : "network_error",
    message: aborted ? "the request was aborted" : "the server could not be reached",
    cause,
  });
}
