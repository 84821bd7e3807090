import { Cron } from "croner";
import { ConfigError } from "../../config/config.js";
import type { BrokerDeps } from "../../deps.js";
import { loggableError } from "../../logging/logger.js";
import { checkOverdueReviews } from "./overdue-review-check.js";

/** The scheduled overdue-review check, started by `serve`. */
export interface OverdueReviewJob {
  /** Starts a check now unless one is in flight, and resolves when that check ends. */
  runNow(): Promise<void>;
  /** Stops scheduling checks and resolves once the check in flight, if any, has ended. */
  stop(): Promise<void>;
}

/**
 * Schedules `checkOverdueReviews` on `config.reviewCheckSchedule` (croner syntax). Checks
 * never overlap within a process. A failed check is logged and the next one retries. The
 * timer is unreferenced, so that the job alone never keeps the process alive. Throws
 * `ConfigError` when the schedule is not a valid cron expression.
 */
export function startOverdueReviewCheck(deps: BrokerDeps): OverdueReviewJob {
  const log = deps.log.child({ module: "review-check" });
  let stopped = false;
  let inFlight: Promise<void> | undefined;

  async function runCheck(): Promise<void> {
    try {
      await checkOverdueReviews(deps);
    } catch (error) {
      log.error({ err: loggableError(error) }, "overdue-review check failed; the next run tries again");
    }
  }

  function runNow(): Promise<void> {
    if (stopped) {
      return Promise.resolve();
    }
    inFlight ??= runCheck().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  const schedule = deps.config.reviewCheckSchedule;
  let cron: Cron;
  try {
    cron = new Cron(schedule, { unref: true }, runNow);
  } catch (error) {
    throw new ConfigError(`BROKER_REVIEW_CHECK_SCHEDULE '${schedule}' is not a valid cron expression: ${(error as Error).message}`);
  }
  log.info(
    { schedule, action: deps.config.reviewOverdueAction, graceDays: deps.config.reviewGraceDays, nextRun: cron.nextRun()?.toISOString() ?? null },
    "overdue-review check scheduled",
  );

  return {
    runNow,
    async stop() {
      stopped = true;
      cron.stop();
      await inFlight;
      log.info("overdue-review check stopped");
    },
  };
}
