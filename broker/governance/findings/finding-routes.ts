import type { BrokerDeps } from "../../deps.js";
import { jsonResponse } from "../../http/common-schemas.js";
import { type BrokerApp, operatorRoute } from "../../http/route-helpers.js";
import { computeFindings } from "./compute-findings.js";
import { FindingFilter, FindingReport } from "./finding-schemas.js";

export function registerFindingRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/findings",
      tags: ["governance"],
      summary: "Compute policy findings from the current register, grants, secrets and leases",
      description: "Findings that a live exception suppresses are counted, and listed only with include_suppressed=true.",
      request: { query: FindingFilter },
      responses: { 200: jsonResponse(FindingReport, "The findings at the time of the request") },
    }),
    async (c) => {
      const { rule, severity, include_suppressed: includeSuppressed } = c.req.valid("query");
      const now = deps.clock.now();
      const matching = (await computeFindings(deps, now)).filter(
        (finding) => (!rule || finding.rule === rule) && (!severity || finding.severity === severity),
      );
      const suppressed = matching.filter((finding) => finding.suppressed).length;
      return c.json(
        {
          generated_at: now.toISOString(),
          open: matching.length - suppressed,
          suppressed,
          items: includeSuppressed ? matching : matching.filter((finding) => !finding.suppressed),
        },
        200,
      );
    },
  );
}
