import { serve as serveNode, type ServerType } from "@hono/node-server";
import type { BrokerConfig } from "../config/config.js";
import { startOverdueReviewCheck } from "../governance/reviews/overdue-review-job.js";
import { createApp } from "../http/app.js";
import { startExpirySweep } from "../leases/expiry-sweep-job.js";
import { startRotationScheduler } from "../rotation/rotation-scheduler.js";
import { checkMasterKeyOpensStoredKeys, closeRuntime, initializeOnFirstStart, openRuntime, warnAboutMasterKeyFile } from "./bootstrap.js";

/**
 * Starts the broker, its lease expiry sweep, its rotation scheduler and its overdue-review
 * check, and serves until SIGTERM or SIGINT. Then it drains requests, waits for a sweep,
 * a review check and a rotation step in flight, chains the audit events still pending
 * and closes the database.
 */
export async function serveBroker(config: BrokerConfig): Promise<void> {
  const runtime = await openRuntime(config, { processMetrics: true });
  const { deps } = runtime;
  deps.auditChain.start();
  await warnAboutMasterKeyFile(deps.log, deps.masterKeys);
  await initializeOnFirstStart(runtime);
  await checkMasterKeyOpensStoredKeys(runtime);
  const expirySweep = startExpirySweep(deps);
  const rotationScheduler = startRotationScheduler(deps);
  const reviewCheck = startOverdueReviewCheck(deps);
  deps.kickRotations = () => void rotationScheduler.runNow();

  const app = createApp(deps);
  const server = await listen(app.fetch, config);
  deps.log.info({ host: config.host, port: config.port, issuer: config.issuer, database: runtime.database.kind }, "broker listening");

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      // Ctrl-C under `npm start` delivers SIGINT twice: from the terminal and from npm.
      deps.log.info({ signal }, "already shutting down");
      return;
    }
    stopping = true;
    deps.log.info({ signal }, "shutting down: no new connections, waiting for requests in flight");
    const forced = setTimeout(() => {
      deps.log.warn({ graceMs: config.shutdownGraceMs }, "requests still running after the grace period; closing connections");
      server.closeAllConnections?.();
    }, config.shutdownGraceMs);
    forced.unref();

    const sweepStopped = expirySweep.stop();
    const rotationsStopped = rotationScheduler.stop();
    const reviewCheckStopped = reviewCheck.stop();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections?.();
    await closed;
    clearTimeout(forced);
    await sweepStopped;
    await rotationsStopped;
    await reviewCheckStopped;
    await deps.adapters.close();
    await closeRuntime(runtime);
    deps.log.info("broker stopped");
    deps.log.flush();
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

function listen(fetch: (request: Request) => Response | Promise<Response>, config: BrokerConfig): Promise<ServerType & { closeAllConnections?: () => void; closeIdleConnections?: () => void }> {
  return new Promise((resolve, reject) => {
    const server = serveNode({ fetch, hostname: config.host, port: config.port }, () => resolve(server));
    server.once("error", reject);
  });
}
