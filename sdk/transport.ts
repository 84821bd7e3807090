import type { Clock } from "./clock.js";
import { BrokerProblemError, BrokerUnavailableError, ClientClosed, InvalidBrokerResponse, OAuthError, type SecretsBrokerError } from "./errors.js";
import { backoffDelay, type RetryPolicy, retryAfterMs } from "./retry.js";

/** Receives the SDK's debug events: ids, counts and delays only, never a token or a value. */
export type DebugSink = (event: string, fields: Record<string, string | number | boolean | null>) => void;

/** The request settings: fetch function, clock and retry policy. */
export interface Transport {
  fetch: typeof fetch;
  clock: Clock;
  retry: RetryPolicy;
  /** Time allowed for one attempt, response body included. */
  requestTimeoutMs: number;
  debug: DebugSink;
  /** Aborts every request and retry wait when the client closes. */
  signal?: AbortSignal;
}

export interface BrokerRequest {
  method: "GET" | "POST";
  url: string;
  headers?: Record<string, string>;
  /** The body, or a function that builds it for each attempt (a client assertion is good for one use only). */
  body?: string | (() => Promise<string>);
}

type Attempt = { ok: true; body: unknown } | { ok: false; error: SecretsBrokerError; retryAfterMs?: number };

/**
 * Sends a request and returns its parsed JSON body. Network failures, timeouts, 5xx and
 * 429 are retried with backoff (honouring `Retry-After`); any other 4xx fails at once.
 */
export async function sendRequest(transport: Transport, request: BrokerRequest): Promise<unknown> {
  const label = `${request.method} ${new URL(request.url).pathname}`;
  for (let attempt = 1; ; attempt++) {
    if (transport.signal?.aborted) {
      throw new ClientClosed();
    }
    const outcome = await attemptOnce(transport, request, label);
    if (outcome.ok) {
      return outcome.body;
    }

    const { error } = outcome;
    if (!error.retryable || attempt >= transport.retry.maxAttempts) {
      throw error;
    }
    const delayMs = outcome.retryAfterMs ?? backoffDelay(transport.retry, attempt);
    if (delayMs > transport.retry.maxRetryAfterMs) {
      throw error;
    }
    transport.debug("request.retry", { request: label, attempt, delay_ms: delayMs, error: error.code });
    await transport.clock.sleep(delayMs, transport.signal);
  }
}

async function attemptOnce(transport: Transport, request: BrokerRequest, label: string): Promise<Attempt> {
  const body = typeof request.body === "function" ? await request.body() : request.body;
  let response: Response;
  let text: string;
  try {
    response = await transport.fetch(request.url, {
      method: request.method,
      headers: request.headers,
      body,
      signal: requestSignal(transport),
    });
    text = await response.text();
  } catch (cause) {
    if (transport.signal?.aborted) {
      return { ok: false, error: new ClientClosed() };
    }
    return { ok: false, error: new BrokerUnavailableError(`${label}: the broker could not be reached (${networkReason(cause)})`, { cause }) };
  }

  if (response.ok) {
    return { ok: true, body: parseJson(text, label) };
  }
  const error = errorFromResponse(response.status, text, label);
  return { ok: false, error, retryAfterMs: retryAfterMs(response.headers.get("retry-after"), transport.clock.now()) };
}

/** Combines the attempt's timeout with the client's close signal, when there is one. */
function requestSignal(transport: Transport): AbortSignal {
  const timeout = AbortSignal.timeout(transport.requestTimeoutMs);
  return transport.signal ? AbortSignal.any([transport.signal, timeout]) : timeout;
}

function parseJson(text: string, label: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new InvalidBrokerResponse(`${label}: the broker's response is not JSON`);
  }
}

/** Turns an error response into a problem error, an OAuth error, or a generic one for a proxy's page. */
function errorFromResponse(status: number, text: string, label: string): SecretsBrokerError {
  let body: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === "object") body = parsed as Record<string, unknown>;
  } catch {
    // Not JSON: a proxy or load balancer responded, so the status describes it.
  }
  if (typeof body["error"] === "string") {
    return new OAuthError(status, body["error"], stringOr(body["error_description"], "no description"), label);
  }
  const code = stringOr(body["code"], `http_${status}`);
  const detail = stringOr(body["detail"], `the broker answered ${status}`);
  const requestId = typeof body["request_id"] === "string" ? body["request_id"] : null;
  return new BrokerProblemError(status, stringOr(body["type"], "about:blank"), code, detail, requestId, label);
}

function stringOr(value: unknown, fallback: string): string {
  return typeof value === "string" && value !== "" ? value : fallback;
}

/** Returns a short, value-free reason for a network failure: the system error code or the error's name. */
function networkReason(cause: unknown): string {
  const inner = (cause as { cause?: { code?: unknown } } | undefined)?.cause;
  if (inner && typeof inner.code === "string") {
    return inner.code;
  }
  if (cause instanceof Error) {
    return cause.name === "TimeoutError" ? "timed out" : cause.name;
  }
  return "unknown error";
}
