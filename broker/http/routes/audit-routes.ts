import { z } from "@hono/zod-openapi";
import { stream } from "hono/streaming";
import { streamAuditEvents } from "../../audit/audit-query.js";
import { verifyAuditChain } from "../../audit/audit-verify.js";
import type { BrokerDeps } from "../../deps.js";
import { loggableError } from "../../logging/logger.js";
import { jsonResponse, Rfc3339 } from "../common-schemas.js";
import { type BrokerApp, operatorRoute } from "../route-helpers.js";

const AuditQuery = z.strictObject({
  from: Rfc3339.optional().openapi({ description: "Events at or after this time." }),
  to: Rfc3339.optional().openapi({ description: "Events before this time." }),
  actor: z.string().min(1).max(128).optional(),
  action: z.string().min(1).max(128).optional(),
  target: z.string().min(1).max(128).optional(),
  outcome: z.enum(["success", "denied", "failure"]).optional(),
  after_seq: z.coerce.number({ message: "must be a sequence number" }).int().min(0).optional(),
  limit: z.coerce.number({ message: "must be a positive integer" }).int().min(1).optional(),
});

const VerifyResult = z
  .object({
    valid: z.boolean(),
    events: z.number().int(),
    first_invalid_seq: z.number().int().optional(),
    reason: z.string().optional(),
    pending: z.number().int().openapi({ description: "Committed events the chainer had not linked yet when the walk read the log." }),
  })
  .openapi("AuditVerifyResult");

export function registerAuditRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/audit/events",
      tags: ["audit"],
      summary: "Stream audit events as NDJSON, oldest first",
      description: "Chains every event committed before the request first, so the stream includes them all.",
      request: { query: AuditQuery },
      responses: {
        200: {
          description: "One audit event per line",
          content: { "application/x-ndjson": { schema: z.string() } },
        },
      },
    }),
    async (c) => {
      const query = c.req.valid("query");
      await deps.auditChain.flush();
      c.header("Content-Type", "application/x-ndjson");
      // The typed-response helpers cover JSON only; an NDJSON stream is a plain Response.
      const response = stream(c, async (output) => {
        const events = streamAuditEvents(deps.db, {
          from: query.from ? new Date(query.from) : undefined,
          to: query.to ? new Date(query.to) : undefined,
          actor: query.actor,
          action: query.action,
          target: query.target,
          outcome: query.outcome,
          afterSeq: query.after_seq,
          limit: query.limit,
        });
        for await (const event of events) {
          await output.write(`${JSON.stringify(event)}\n`);
        }
      }, async (error) => {
        deps.log.error({ err: loggableError(error), requestId: c.get("requestId") }, "audit event export failed while streaming");
      });
      return response as never;
    },
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/audit/verify",
      tags: ["audit"],
      summary: "Walk the audit hash chain and report the first altered, missing or reordered event",
      responses: { 200: jsonResponse(VerifyResult, "The verification result") },
    }),
    async (c) => {
      await deps.auditChain.flush();
      return c.json(await verifyAuditChain(deps.db), 200);
    },
  );
}
