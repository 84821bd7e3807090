import type { IncomingMessage } from "node:http";
import type { Context } from "hono";

const utf8 = new TextDecoder();

/**
 * True when the request announces its body length. The body-limit middleware then checks the
 * header alone (Node.js's parser limits the body to that length), so the body is still unread.
 */
export function hasAnnouncedLength(c: Context): boolean {
  return c.req.header("content-length") !== undefined && c.req.header("transfer-encoding") === undefined;
}

/**
 * Reads the request body as UTF-8 text, once. On the Node.js server a body of announced
 * length is read straight from the socket's stream. `c.req.text()` would build a web
 * `Request`, an `AbortController` and two streams for every request, which costs CPU and
 * garbage-collection work under load. Elsewhere (chunked bodies, `app.request()` in tests)
 * it falls back to `c.req.text()`.
 */
export async function readBodyText(c: Context): Promise<string> {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (!incoming || !hasAnnouncedLength(c)) {
    return c.req.text();
  }
  const chunks: Buffer[] = [];
  for await (const chunk of incoming) {
    chunks.push(chunk as Buffer);
  }
  return utf8.decode(Buffer.concat(chunks));
}
