import { z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { recordAuditEvents } from "../audit/audit-writer.js";
import { secrets, secretVersions } from "../db/schema.js";
import type { BrokerDeps } from "../deps.js";
import { auditDeps } from "../http/auth-middleware.js";
import { jsonBody, jsonResponse } from "../http/common-schemas.js";
import { requestContext } from "../http/request-context.js";
import { type BrokerApp, operatorRoute } from "../http/route-helpers.js";
import { fingerprintOf, toSecretData } from "../secrets/fingerprint.js";
import { FingerprintMatch, FingerprintRequest, type SecretVersion } from "../secrets/secret-schemas.js";
import { buildIncidentReport, MAX_INCIDENT_LEASES } from "./incident-report.js";
import { IncidentQuerySchema, IncidentReportSchema } from "./incident-schemas.js";

export function registerIncidentRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.openapi(
    operatorRoute(deps, "operator", {
      method: "post",
      path: "/v1/fingerprints",
      tags: ["incidents"],
      summary: "Fingerprint a value, e.g. a leaked one, and list the secret versions that had it",
      description: "The value is used for the keyed fingerprint and is neither stored nor logged. The lookup is audited with the fingerprint and the matches.",
      request: { body: jsonBody(FingerprintRequest) },
      responses: { 200: jsonResponse(FingerprintMatch, "The fingerprint and the versions that match it") },
    }),
    async (c) => {
      const fingerprint = fingerprintOf(await deps.dataKeys.fingerprintKey(), toSecretData(c.req.valid("json").value));
      const matches = await deps.db
        .select({ secret_id: secretVersions.secretId, name: secrets.name, version: secretVersions.version, stage: secretVersions.stage })
        .from(secretVersions)
        .innerJoin(secrets, eq(secrets.id, secretVersions.secretId))
        .where(and(eq(secretVersions.fingerprint, fingerprint)));
      await recordAuditEvents(auditDeps(deps), requestContext(c), [
        { action: "secret.fingerprint_lookup", details: { fingerprint, matches: matches.map((row) => `${row.secret_id}@${row.version}`) } },
      ]);
      return c.json({ fingerprint, matches: matches.map((row) => ({ ...row, stage: row.stage as z.infer<typeof SecretVersion>["stage"] })) }, 200);
    },
  );

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/incident-report",
      tags: ["incidents"],
      summary: "List the credentials live in an incident window, their holders, and the steps taken since",
      description:
        "By the fingerprint of a leaked value (the leases that carried a version with that value) or by service account, " +
        "within [from, to). The report fills the NIS2 Article 23 early warning and notification: affected systems, " +
        `exposure window and indicators, and lists the commands that contain the incident. At most ${"10,000"} leases are listed.`,
      request: { query: IncidentQuerySchema },
      responses: { 200: jsonResponse(IncidentReportSchema, "The incident report") },
    }),
    async (c) => {
      const query = c.req.valid("query");
      const report = await buildIncidentReport(
        deps.db,
        {
          fingerprint: query.fingerprint,
          serviceAccountId: query.service_account_id,
          from: query.from ? new Date(query.from) : undefined,
          to: query.to ? new Date(query.to) : undefined,
        },
        deps.clock.now(),
      );
      return c.json(report, 200, { "Cache-Control": "no-store" });
    },
  );
}
