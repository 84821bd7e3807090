import { request as httpRequest } from "node:http";
import type { AddressInfo } from "node:net";
import { serve, type ServerType } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWorkload, FORM_CONTENT_TYPE, JWT_BEARER, signAssertion, type Workload } from "../tokens/oauth-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";

/**
 * Request bodies through the Node.js server. There the broker reads a body of announced
 * length straight from the socket and checks its size from the header alone, a path that
 * app.request() never takes.
 */
describe("request bodies over HTTP", () => {
  const BODY_LIMIT = 4096;
  let broker: TestBroker;
  let server: ServerType;
  let port: number;
  let workload: Workload;

  beforeAll(async () => {
    broker = await startTestBroker({ config: { bodyLimitBytes: BODY_LIMIT } });
    workload = await createWorkload(broker);
    server = await new Promise<ServerType>((resolve) => {
      const started: ServerType = serve({ fetch: broker.app.fetch, hostname: "127.0.0.1", port: 0 }, () => resolve(started));
    });
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await broker.close();
  });

  interface Sent {
    status: number;
    json: Record<string, unknown>;
  }

  /** Sends `parts` as the body, one write each: with a Content-Length, or chunked when `chunked`. */
  function send(path: string, parts: Buffer[], options: { chunked?: boolean; contentType?: string } = {}): Promise<Sent> {
    const length = parts.reduce((sum, part) => sum + part.length, 0);
    const headers: Record<string, string> = { "content-type": options.contentType ?? FORM_CONTENT_TYPE };
    if (!options.chunked) {
      headers["content-length"] = String(length);
    }
    return new Promise((resolve, reject) => {
      const outgoing = httpRequest({ host: "127.0.0.1", port, path, method: "POST", headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => resolve({ status: response.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString("utf8")) }));
      });
      outgoing.on("error", reject);
      const writeNext = (index: number) => {
        if (index === parts.length) {
          outgoing.end();
          return;
        }
        outgoing.write(parts[index], () => setTimeout(() => writeNext(index + 1), 5));
      };
      writeNext(0);
    });
  }

  async function tokenForm(extra: Record<string, string> = {}): Promise<string> {
    return new URLSearchParams({
      grant_type: "client_credentials",
      client_assertion_type: JWT_BEARER,
      client_assertion: await signAssertion(broker, workload),
      ...extra,
    }).toString();
  }

  /** Splits text into two buffers in the middle of its first multi-byte character. */
  function splitInsideCharacter(text: string, character: string): Buffer[] {
    const bytes = Buffer.from(text, "utf8");
    const cut = bytes.indexOf(Buffer.from(character, "utf8")) + 1;
    return [bytes.subarray(0, cut), bytes.subarray(cut)];
  }

  it("token from multi-write body", async () => {
    const body = Buffer.from(await tokenForm());

    const response = await send("/v1/token", [body.subarray(0, 100), body.subarray(100, 700), body.subarray(700)]);

    expect(response.status, JSON.stringify(response.json)).toBe(200);
    expect(response.json["token_type"]).toBe("Bearer");
  });

  it("token from chunked body", async () => {
    const body = Buffer.from(await tokenForm());

    const response = await send("/v1/token", [body.subarray(0, 300), body.subarray(300)], { chunked: true });

    expect(response.status, JSON.stringify(response.json)).toBe(200);
  });

  it("multi-byte character split across writes", async () => {
    const audience = "https://ünknown.example";
    // Raw UTF-8 rather than %C3%BC, so that the character's two bytes arrive in different writes.
    const raw = `${await tokenForm()}&audience=${audience}`;

    const response = await send("/v1/token", splitInsideCharacter(raw, "ü"));

    expect(response.status).toBe(400);
    expect(response.json["error"]).toBe("invalid_target");
    expect(response.json["error_description"]).toContain(audience);
  });

  it("oversized Content-Length refused", async () => {
    const response = await send("/v1/token", [Buffer.alloc(BODY_LIMIT + 1, "a")]);

    expect(response.status).toBe(413);
    expect(response.json["type"]).toBe("urn:secrets-broker:problem:payload-too-large");
  });

  it("oversized chunked body refused", async () => {
    const response = await send("/v1/token", [Buffer.alloc(BODY_LIMIT, "a"), Buffer.from("a")], { chunked: true });

    expect(response.status).toBe(413);
    expect(response.json["type"]).toBe("urn:secrets-broker:problem:payload-too-large");
  });

  it("oversized JSON body refused", async () => {
    const response = await send("/v1/applications", [Buffer.alloc(BODY_LIMIT + 1, " ")], { contentType: "application/json" });

    expect(response.status).toBe(413);
  });
});
