import { CliError } from "./cli-error.js";

export const DEFAULT_BROKER_ADDR = "http://127.0.0.1:8080";
/** How long the CLI waits for the broker before giving up, in milliseconds. */
const REQUEST_TIMEOUT_MS = 30_000;

/** HTTP client for a running broker, configured by BROKER_ADDR and BROKER_TOKEN like Vault's CLI. */
export class BrokerClient {
  constructor(
    readonly address: string,
    private readonly token: string | undefined,
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

  /** Sends a request; `timeoutMs` bounds the whole exchange, body included (30 s by default). */
  async send(method: string, path: string, body?: unknown, timeoutMs: number = REQUEST_TIMEOUT_MS): Promise<Response> {
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
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
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
