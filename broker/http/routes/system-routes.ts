import { isReady } from "../../db/database.js";
import type { BrokerDeps } from "../../deps.js";
import { loggableError } from "../../logging/logger.js";
import type { BrokerApp } from "../route-helpers.js";

/** Unauthenticated probes for orchestrators and Prometheus. */
export function registerSystemRoutes(app: BrokerApp, deps: BrokerDeps): void {
  app.get("/healthz", (c) => c.json({ status: "ok" }));

  app.get("/readyz", async (c) => {
    try {
      if (await isReady(deps.db, deps.expectedMigrations)) {
        return c.json({ status: "ready" });
      }
      return c.json({ status: "not_ready", reason: "database migrations are not all applied" }, 503);
    } catch (error) {
      deps.log.warn({ err: loggableError(error) }, "readiness check failed");
      return c.json({ status: "not_ready", reason: "database unreachable" }, 503);
    }
  });

  app.get("/metrics", async (c) => {
    const body = await deps.metrics.registry.metrics();
    return c.body(body, 200, { "Content-Type": deps.metrics.registry.contentType });
  });
}
