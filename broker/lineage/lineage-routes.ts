import { z } from "@hono/zod-openapi";
import type { BrokerDeps } from "../deps.js";
import { type BrokerApp, operatorRoute } from "../http/route-helpers.js";
import { loggableError } from "../logging/logger.js";
import { streamChunks } from "./chunk-stream.js";
import { formatLineage, LINEAGE_CONTENT_TYPES, type LineageFormat } from "./lineage-format.js";
import { type LineageFilter, streamLineage } from "./lineage-query.js";
import { LineageQuery, LineageRecordSchema } from "./lineage-schemas.js";

export function registerLineageRoutes(app: BrokerApp, deps: BrokerDeps): void {
  const log = deps.log.child({ module: "lineage" });

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/lineage",
      tags: ["lineage"],
      summary: "Export credential lineage: one row per lease, with its account, application, owners and how it ended",
      description:
        "Rows are ordered by issued_at, then lease id, and streamed page by page. With `from` and `to`, the export " +
        "holds the leases live at any moment in [from, to): issued before `to` and not revoked or expired by `from`. " +
        "In CSV, a cell that starts with =, +, -, @, tab or carriage return gets a leading single quote, so that " +
        "spreadsheets show it as text instead of running it as a formula. No token value is exported.",
      request: { query: LineageQuery },
      responses: {
        200: {
          description: "The leases, in the requested format",
          content: {
            "application/x-ndjson": { schema: LineageRecordSchema },
            "application/json": { schema: z.array(LineageRecordSchema) },
            "text/csv": { schema: z.string() },
          },
        },
      },
    }),
    async (c) => {
      const query = c.req.valid("query");
      const filter: LineageFilter = {
        serviceAccountId: query.service_account_id,
        applicationId: query.application_id,
        secretId: query.secret_id,
        from: query.from ? new Date(query.from) : undefined,
        to: query.to ? new Date(query.to) : undefined,
      };
      const context = { requestId: c.get("requestId"), ...query };
      const chunks = formatLineage(query.format, streamLineage(deps.db, deps.clock.now(), filter));

      // Reading the first chunk before the response starts turns a failing query into a
      // problem document. A failure after that can only cut the stream short.
      log.info(context, "lineage export started");
      const first = await chunks.next();
      const body = streamChunks(first, chunks, {
        onEnd: () => log.info(context, "lineage export finished"),
        onCancel: () => log.info(context, "lineage export cancelled: the client closed the connection"),
        onError: (error) => log.error({ ...context, err: loggableError(error) }, "lineage export failed while streaming"),
      });
      // The typed-response helpers cover JSON only, so the stream is cast; c.body keeps the
      // headers that middleware set, such as X-Request-Id.
      return c.body(body, 200, exportHeaders(query.format)) as never;
    },
  );
}

function exportHeaders(format: LineageFormat): Record<string, string> {
  return { "Content-Type": LINEAGE_CONTENT_TYPES[format], "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff" };
}
