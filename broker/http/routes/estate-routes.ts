import { z } from "@hono/zod-openapi";
import type { BrokerDeps } from "../../deps.js";
import { dryRunImport, importEstate } from "../../estate/estate-import.js";
import { Estate, EstateImportResult } from "../../estate/estate-schema.js";
import { jsonBody, jsonResponse } from "../common-schemas.js";
import { requestContext } from "../request-context.js";
import { type BrokerApp, inAuditedTransaction, operatorRoute } from "../route-helpers.js";

/** Estates are larger than single objects: allow up to 4 MiB for this one route. */
export const ESTATE_BODY_LIMIT_BYTES = 4 * 1024 * 1024;

export function registerEstateRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.openapi(
    operatorRoute(deps, "operator", {
      method: "post",
      path: "/v1/import",
      tags: ["register"],
      summary: "Import applications, trusted issuers, service accounts and grants in one transaction",
      description: "Every entry is created or none is. With dry_run=true the import is checked in full and rolled back.",
      request: {
        query: z.strictObject({
          dry_run: z
            .enum(["true", "false"], { message: "must be true or false" })
            .default("false")
            .openapi({ param: { name: "dry_run", in: "query" } }),
        }),
        body: jsonBody(Estate),
      },
      responses: { 200: jsonResponse(EstateImportResult, "What was created, with ids") },
    }),
    async (c) => {
      const estate = c.req.valid("json");
      if (c.req.valid("query").dry_run === "true") {
        const checked = await dryRunImport((work) => inAuditedTransaction(deps, c, work), deps.clock, estate, requestContext(c).actor);
        return c.json(checked, 200);
      }
      const result = await inAuditedTransaction(deps, c, (tx, record) => importEstate(tx, deps.clock, record, estate, requestContext(c).actor));
      return c.json(result, 200);
    },
  );
}
