import { CliError } from "./cli-error.js";

export const DEFAULT_BROKER_ADDR = "http://127.0.0.1:8080";
/** How long the CLI waits for the broker before giving up, in milliseconds. */
const REQUEST_TIMEOUT_MS = 30_000;
/** How long a streamed export may go without a byte before the CLI gives up, in milliseconds. */
const STREAM_IDLE_TIMEOUT_MS = 60_000;

export interface BrokerClientTimeouts {
  /** Bounds a whole request, body included; for a stream, the wait for the response to begin. */
  requestMs: number;
  /** Bounds each gap between bytes of a streamed body. */
  streamIdleMs: number;
}

/** HTTP client for a running broker, configured by BROKER_ADDR and BROKER_TOKEN like Vault's CLI. */
export class BrokerClient {
  constructor(
    readonly address: string,
    private readonly token: string | undefined,
    private readonly timeouts: BrokerClientTimeouts = { requestMs: REQUEST_TIMEOUT_MS, streamIdleMs: STREAM_IDLE_TIMEOUT_MS },
  ) {}

  static fromEnvironment(environment: NodeJS.ProcessEnv = process.env): BrokerClient {
    const address = (environment["BROKER_ADDR"] || DEFAULT_BROKER_ADDR).replace(/\/+$/, "");
    return new BrokerClient(address, environment["BROKER_TOKEN"] || undefined);
  }

  async json<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await this.send(method, path, body);
    if (response.status === 204) {
      return undefined as T;
    }
    return (await response.json()) as T;
  }

  /** Follows `next_cursor` through every page of a list endpoint. */
  async listAll<T = any>(path: string, query: Record<string, string | undefined> = {}): Promise<T[]> {
    const items: T[] = [];
    let cursor: string | null = null;
    do {
      const params = new URLSearchParams(
        Object.entries({ ...query, cursor: cursor ?? undefined, limit: "1000" }).filter(
          (entry): entry is [string, string] => entry[1] !== undefined,
        ),
      );
      const page: { items: T[]; next_cursor?: string | null } = await this.json("GET", `${path}?${params}`);
      items.push(...page.items);
      cursor = page.next_cursor ?? null;
    } while (cursor);
    return items;
  }

  /** Sends a request; the request timeout (30 s) bounds the whole exchange, body included. */
  send(method: string, path: string, body?: unknown): Promise<Response> {
    return this.fetchChecked(method, path, body, AbortSignal.timeout(this.timeouts.requestMs));
  }

  /**
   * GETs an export and returns its body as it streams, however long it takes while bytes keep
   * coming: `startTimeoutMs` (the request timeout by default) bounds the wait for the response
   * to begin, and the stream idle timeout (60 s) each gap in the body.
   */
  async stream(path: string, startTimeoutMs: number = this.timeouts.requestMs): Promise<ReadableStream<Uint8Array>> {
    const controller = new AbortController();
    let timer = setTimeout(() => controller.abort(new Error(`no response within ${startTimeoutMs / 1000} s`)), startTimeoutMs);
    let response: Response;
    try {
      response = await this.fetchChecked("GET", path, undefined, controller.signal);
    } finally {
      clearTimeout(timer);
    }

    const idleMs = this.timeouts.streamIdleMs;
    const rearm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => controller.abort(new Error(`the broker sent nothing for ${idleMs / 1000} s`)), idleMs);
    };
    rearm();
    return response.body!.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, output) {
          rearm();
          output.enqueue(chunk);
        },
        flush() {
          clearTimeout(timer);
        },
      }),
    );
  }

  private async fetchChecked(method: string, path: string, body: unknown, signal: AbortSignal): Promise<Response> {
    if (!this.token) {
      throw new CliError("BROKER_TOKEN is not set: export BROKER_TOKEN=<operator token> (the first one is in <data dir>/admin-token)");
    }
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}` };
    if (body !== undefined) {
      headers["content-type"] = "application/json";
    }

    let response: Response;
    try {
      response = await fetch(`${this.address}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (error) {
      if (signal.aborted) {
        throw new CliError(`request to the broker at ${this.address} timed out: ${(signal.reason as Error).message}; retry, or check that the broker is not overloaded`);
      }
      const reason = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
      throw new CliError(`cannot reach the broker at ${this.address} (${reason}); is it running, and is BROKER_ADDR right?`);
    }
    if (!response.ok) {
      throw await problemError(response);
    }
    return response;
  }
}

async function problemError(response: Response): Promise<CliError> {
  const text = await response.text();
  try {
    const problem = JSON.parse(text) as Record<string, unknown>;
    const detail = typeof problem["detail"] === "string" ? problem["detail"] : text;
    return new CliError(`broker returned ${response.status}: ${detail}`, 1, problem);
  } catch {
    return new CliError(`broker returned ${response.status}: ${text.slice(0, 200)}`);
  }
}
