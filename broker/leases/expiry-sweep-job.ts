import { Cron } from "croner";
import { ConfigError } from "../config/config.js";
import type { BrokerDeps } from "../deps.js";
import { loggableError } from "../logging/logger.js";
import { ExpirySweepFailed, type SweepOptions, sweepExpiredLeases } from "./expiry-sweep.js";
import { retryUpstreamRevocations } from "./upstream-revoker.js";

/** A scheduled lease expiry sweep, started by `serve`. */
export interface ExpirySweepJob {
  /** Starts a run now unless one is in flight, and resolves when that run ends. */
  runNow(): Promise<void>;
  /** Stops scheduling runs and resolves once the run in flight, if any, has ended. */
  stop(): Promise<void>;
}

/**
 * Schedules `sweepExpiredLeases`, then the retries of due upstream revocations, on
 * `config.sweepSchedule` (croner syntax). Runs never
 * overlap within a process. A failed run is logged and the next run retries it. The timer
 * is unreferenced, so that the job alone never keeps the process alive. Throws
 * `ConfigError` when the schedule is not a valid cron expression.
 */
export function startExpirySweep(
  deps: Pick<BrokerDeps, "db" | "clock" | "log" | "metrics" | "config" | "adapters" | "dataKeys" | "auditChain">,
  options: Omit<SweepOptions, "signal"> = {},
): ExpirySweepJob {
  const log = deps.log.child({ module: "expiry-sweep" });
  const stopping = new AbortController();
  let inFlight: Promise<void> | undefined;

  async function runSweep(): Promise<void> {
    try {
      await sweepExpiredLeases(deps, { ...options, signal: stopping.signal });
    } catch (error) {
      logFailure(log, error);
    }
    try {
      await retryUpstreamRevocations(deps, stopping.signal);
    } catch (error) {
      log.error({ err: loggableError(error) }, "upstream revocation retries failed; the next run tries again");
    }
  }

  function runNow(): Promise<void> {
    if (stopping.signal.aborted) {
      return Promise.resolve();
    }
    inFlight ??= runSweep().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  const schedule = deps.config.sweepSchedule;
  let cron: Cron;
  try {
    cron = new Cron(schedule, { unref: true }, runNow);
  } catch (error) {
    throw new ConfigError(`BROKER_SWEEP_SCHEDULE '${schedule}' is not a valid cron expression: ${(error as Error).message}`);
  }
  log.info({ schedule, nextRun: cron.nextRun()?.toISOString() ?? null }, "lease expiry sweep scheduled");

  return {
    runNow,
    async stop() {
      cron.stop();
      stopping.abort();
      await inFlight;
      log.info("lease expiry sweep stopped");
    },
  };
}

function logFailure(log: BrokerDeps["log"], error: unknown): void {
  if (error instanceof ExpirySweepFailed) {
    log.error(
      {
        err: loggableError(error.cause),
        batch: error.batch,
        firstLeaseId: error.firstLeaseId,
        lastLeaseId: error.lastLeaseId,
        leasesExpiredBefore: error.leasesExpiredBefore,
      },
      "lease expiry sweep batch failed and was rolled back; the next run retries it",
    );
    return;
  }
  log.error({ err: loggableError(error) }, "lease expiry sweep failed; the next run retries it");
}
