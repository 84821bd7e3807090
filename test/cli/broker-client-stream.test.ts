import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { BrokerClient } from "../../broker/cli/broker-client.js";

/**
 * Streamed exports (lineage, audit events, evidence) may take longer than the CLI's request
 * timeout, so the timeout bounds only the wait for the response to begin, and the idle
 * timeout each gap in the body. A loopback server plays the broker.
 */
describe("broker client streams", () => {
  let server: Server | undefined;

  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    server = undefined;
  });

  async function startServer(handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<BrokerClient> {
    server = createServer(handler);
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    return new BrokerClient(`http://127.0.0.1:${port}`, "token", { requestMs: 300, streamIdleMs: 250 });
  }

  async function readAll(stream: ReadableStream<Uint8Array>): Promise<string> {
    return new Response(stream).text();
  }

  /** Writes `chunks` one every `gapMs`, then ends the response. */
  function trickle(response: ServerResponse, chunks: string[], gapMs: number): void {
    response.writeHead(200, { "content-type": "application/x-ndjson" });
    const next = (index: number) => {
      if (index === chunks.length) {
        response.end();
        return;
      }
      response.write(chunks[index]);
      setTimeout(() => next(index + 1), gapMs);
    };
    next(0);
  }

  it("long body read in full", async () => {
    const chunks = ["1\n", "2\n", "3\n", "4\n", "5\n", "6\n"];
    const client = await startServer((_request, response) => trickle(response, chunks, 120));

    const body = await readAll(await client.stream("/v1/lineage"));

    expect(body).toBe(chunks.join(""));
  });

  it("idle gap ends the stream", async () => {
    const client = await startServer((_request, response) => {
      response.writeHead(200);
      response.write("first\n");
    });

    const stream = await client.stream("/v1/lineage");

    await expect(readAll(stream)).rejects.toThrow(/sent nothing for 0.25 s/);
  });

  it("late response refused", async () => {
    const client = await startServer(() => undefined);

    await expect(client.stream("/v1/lineage")).rejects.toThrow(/timed out: no response within 0.3 s/);
  });

  it("start timeout covers pack build", async () => {
    const client = await startServer((_request, response) => {
      setTimeout(() => trickle(response, ["pack"], 10), 500);
    });

    const body = await readAll(await client.stream("/v1/evidence", 2000));

    expect(body).toBe("pack");
  });

  it("problem detail reported", async () => {
    const client = await startServer((_request, response) => {
      response.writeHead(400, { "content-type": "application/problem+json" });
      response.end(JSON.stringify({ type: "urn:secrets-broker:problem:validation-failed", detail: "from must be before to" }));
    });

    await expect(client.stream("/v1/lineage?from=x")).rejects.toThrow(/broker returned 400: from must be before to/);
  });
});
