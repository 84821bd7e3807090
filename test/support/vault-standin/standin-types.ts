/**
 * Shared shapes of the Vault stand-in: the error it raises inside a handler, the request
 * a handler sees, and the clock it reads. Error replies follow Vault's envelope,
 * `{"errors": [...]}`, described at https://developer.hashicorp.com/vault/api-docs#error-response.
 */

/** A handler's failure, sent as `status` with `{"errors": errors}`, or with `body` when one is given. */
export class VaultReply extends Error {
  constructor(
    readonly status: number,
    readonly errors: string[],
    readonly body?: unknown,
  ) {
    super(errors[0] ?? `status ${status}`);
  }
}

export function badRequest(message: string): VaultReply {
  return new VaultReply(400, [message]);
}

export function permissionDenied(): VaultReply {
  return new VaultReply(403, ["permission denied"]);
}

/** Vault's reply to a path without data: 404 with an empty `errors` list. */
export function notFound(): VaultReply {
  return new VaultReply(404, []);
}

/** Vault's reply to a path no mounted engine serves. */
export function noHandler(path: string): VaultReply {
  return new VaultReply(404, [`no handler for route "${path}". route entry not found.`]);
}

export interface StandinClock {
  now(): Date;
}

/** One request as a handler receives it: `path` without `/v1/` and without the query. */
export interface StandinRequest {
  method: "GET" | "POST" | "PUT" | "DELETE" | "LIST";
  path: string;
  query: URLSearchParams;
  body: Record<string, unknown>;
  namespace: string;
}

/** A request the stand-in received, for tests to assert on. Token values are left out. */
export interface RecordedCall {
  method: string;
  path: string;
  namespace: string;
  body: Record<string, unknown>;
}

/** Response body of a handler; undefined means 204 No Content. */
export type HandlerResult = { status?: number; body?: unknown } | undefined;

/** Seconds from a duration field: an integer, or a string such as "90", "90s", "15m" or "1h". */
export function durationSeconds(value: unknown): number | undefined {
  if (typeof value === "number" && Number.isInteger(value) && value >= 0) {
    return value;
  }
  if (typeof value !== "string") {
    return undefined;
  }
  const match = /^(\d+)(s|m|h)?$/.exec(value);
  if (!match) {
    return undefined;
  }
  const units = { s: 1, m: 60, h: 3600 } as const;
  return Number(match[1]) * units[(match[2] ?? "s") as keyof typeof units];
}

export function secondsBetween(from: Date, to: Date): number {
  return Math.max(0, Math.floor((to.getTime() - from.getTime()) / 1000));
}
