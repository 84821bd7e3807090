import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { AwsError } from "./standin-error.js";
import { describeSecret, getSecretValue, listSecrets, listSecretVersionIds } from "./standin-read-operations.js";
import { StandinStore } from "./standin-store.js";
import { createSecret, deleteSecret, putSecretValue, updateSecretVersionStage } from "./standin-write-operations.js";

export const STANDIN_REGION = "eu-west-1";
const JSON_CONTENT_TYPE = "application/x-amz-json-1.1";
const TARGET_PREFIX = "secretsmanager.";
/** `AWS4-HMAC-SHA256 Credential=<key id>/<date>/<region>/<service>/aws4_request, SignedHeaders=..., Signature=...` */
const SIGV4_AUTHORIZATION = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$/;

type Operation = (store: StandinStore, input: Record<string, any>) => unknown;

/** The operations the stand-in serves, by the name in X-Amz-Target. */
const OPERATIONS: Record<string, Operation> = {
  CreateSecret: createSecret,
  GetSecretValue: getSecretValue,
  PutSecretValue: putSecretValue,
  UpdateSecretVersionStage: updateSecretVersionStage,
  DescribeSecret: describeSecret,
  ListSecrets: listSecrets,
  ListSecretVersionIds: listSecretVersionIds,
  DeleteSecret: deleteSecret,
};

/** One request the stand-in received. */
export interface RecordedAwsCall {
  operation: string;
  input: Record<string, any>;
  /** The access key id of the SigV4 signature. */
  accessKeyId: string;
  /** The HTTP status the stand-in returned, or "dropped" for a closed connection (after the operation ran, for "response-dropped"). */
  outcome: number | "dropped" | "response-dropped";
}

export interface Failure {
  type: string;
  status?: number;
  message?: string;
}

/** Failure switches, each for one operation ("*" for any), used up one request at a time. */
interface Switch {
  operation: string;
  remaining: number;
  failure: Failure | "drop" | "drop-response";
  /** Only requests whose input matches; all of them when absent. */
  when?: (input: Record<string, any>) => boolean;
}

/**
 * A stand-in for AWS Secrets Manager that speaks its JSON 1.1 wire protocol: POST / with
 * `X-Amz-Target: secretsmanager.<Operation>` and a SigV4 Authorization header for
 * service `secretsmanager`. The signature itself is not verified, only its form, the
 * service and the access key id. Listens on 127.0.0.1 on an ephemeral port.
 */
export class AwsStandin {
  readonly store = new StandinStore(STANDIN_REGION);
  readonly calls: RecordedAwsCall[] = [];
  readonly credentials = { accessKeyId: `AKIDSTANDIN${randomBytes(4).toString("hex").toUpperCase()}`, secretAccessKey: randomBytes(20).toString("base64") };
  latencyMs = 0;
  endpoint = "";

  private readonly switches: Switch[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly server: Server = createServer((request, response) => void this.handle(request, response));

  static async start(): Promise<AwsStandin> {
    const standin = new AwsStandin();
    standin.server.on("connection", (socket) => {
      standin.sockets.add(socket);
      socket.on("close", () => standin.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => standin.server.listen(0, "127.0.0.1", resolve));
    standin.endpoint = `http://127.0.0.1:${(standin.server.address() as { port: number }).port}`;
    return standin;
  }

  /** Makes the next `times` requests of `operation` ("*" for any) whose input matches `when` fail with `failure`. */
  failNext(operation: string, failure: Failure, times = 1, when?: (input: Record<string, any>) => boolean): void {
    this.switches.push({ operation, remaining: times, failure, ...(when ? { when } : {}) });
  }

  /** Makes the next `times` requests of `operation` ("*" for any) end with a closed connection and no response. */
  dropNext(operation: string, times = 1): void {
    this.switches.push({ operation, remaining: times, failure: "drop" });
  }

  /** Makes the next `times` requests of `operation` run, then end with a closed connection, as when a response is lost. */
  dropResponseNext(operation: string, times = 1): void {
    this.switches.push({ operation, remaining: times, failure: "drop-response" });
  }

  /** Removes every failure switch that is not used up. */
  clearFailures(): void {
    this.switches.length = 0;
  }

  callsOf(operation: string): RecordedAwsCall[] {
    return this.calls.filter((call) => call.operation === operation);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) {
      socket.destroy();
    }
    await new Promise((resolve) => this.server.close(resolve));
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const body = await readBody(request);
    const operation = String(request.headers["x-amz-target"] ?? "").replace(TARGET_PREFIX, "");
    let input: Record<string, any> = {};
    let accessKeyId = "";
    try {
      accessKeyId = this.checkRequest(request);
      input = parseInput(body);
      const handler = OPERATIONS[operation];
      if (!handler) {
        throw new AwsError("UnknownOperationException", `Unknown operation ${operation}`);
      }
      if (this.latencyMs > 0) {
        await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
      }
      const injected = this.takeSwitch(operation, input);
      if (injected === "drop") {
        this.calls.push({ operation, input, accessKeyId, outcome: "dropped" });
        request.socket.destroy();
        return;
      }
      if (injected === "drop-response") {
        handler(this.store, input);
        this.calls.push({ operation, input, accessKeyId, outcome: "response-dropped" });
        request.socket.destroy();
        return;
      }
      if (injected) {
        throw new AwsError(injected.type, injected.message ?? `${injected.type} injected by the stand-in`, injected.status ?? 400);
      }
      const output = handler(this.store, input);
      this.calls.push({ operation, input, accessKeyId, outcome: 200 });
      send(response, 200, output);
    } catch (error) {
      const failure = error instanceof AwsError ? error : new AwsError("InternalServiceError", "internal error of the stand-in", 500);
      this.calls.push({ operation, input, accessKeyId, outcome: failure.status });
      send(response, failure.status, { __type: failure.type, message: failure.message });
    }
  }

  /** Checks the protocol headers and the SigV4 credential scope; returns the access key id. */
  private checkRequest(request: IncomingMessage): string {
    if (request.method !== "POST" || request.url !== "/") {
      throw new AwsError("UnknownOperationException", "requests must be POST /");
    }
    if (request.headers["content-type"] !== JSON_CONTENT_TYPE) {
      throw new AwsError("SerializationException", `Content-Type must be ${JSON_CONTENT_TYPE}`);
    }
    const match = SIGV4_AUTHORIZATION.exec(String(request.headers["authorization"] ?? ""));
    if (!match) {
      throw new AwsError("IncompleteSignatureException", "Authorization header requires a SigV4 signature.");
    }
    // A credential scope for another service or region fails signature checking
    // (https://docs.aws.amazon.com/IAM/latest/UserGuide/signature-v4-troubleshooting.html).
    // The messages are those AWS returns, as quoted in aws/aws-sdk-ruby#508 and aws/aws-sdk-js-v3#5576.
    const [, keyId, region, service] = match;
    if (service !== "secretsmanager") {
      throw new AwsError("InvalidSignatureException", "Credential should be scoped to correct service: 'secretsmanager'. ");
    }
    if (region !== this.store.region) {
      throw new AwsError("InvalidSignatureException", `Credential should be scoped to a valid region, not '${region}'. `);
    }
    if (keyId !== this.credentials.accessKeyId) {
      throw new AwsError("UnrecognizedClientException", "The security token included in the request is invalid.");
    }
    return keyId!;
  }

  private takeSwitch(operation: string, input: Record<string, any>): Switch["failure"] | undefined {
    const found = this.switches.find(
      (entry) => entry.remaining > 0 && (entry.operation === operation || entry.operation === "*") && (entry.when === undefined || entry.when(input)),
    );
    if (!found) {
      return undefined;
    }
    found.remaining -= 1;
    return found.failure;
  }
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}

function parseInput(body: string): Record<string, any> {
  try {
    const parsed: unknown = JSON.parse(body || "{}");
    if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
      return parsed as Record<string, any>;
    }
  } catch {
    // Reported below.
  }
  throw new AwsError("SerializationException", "The request body is not a JSON object.");
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": JSON_CONTENT_TYPE, "content-length": Buffer.byteLength(text), "x-amzn-requestid": randomBytes(16).toString("hex") });
  response.end(text);
}
