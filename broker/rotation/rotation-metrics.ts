import { sql } from "drizzle-orm";
import { Gauge } from "prom-client";
import { rowsOf } from "../db/database.js";
import type { BrokerDeps } from "../deps.js";
import { loggableError } from "../logging/logger.js";

const AGE_GAUGE = "broker_secret_current_version_age_seconds";
const OVERDUE_GAUGE = "broker_rotations_overdue";

/**
 * Registers the rotation gauges, read from the database at each scrape of /metrics: the
 * age of each static secret's current version, and how many secrets are overdue (due
 * and not started, or with a current version older than their policy's max_age).
 */
export function registerRotationGauges(deps: Pick<BrokerDeps, "db" | "clock" | "log" | "metrics">): void {
  const { registry } = deps.metrics;
  if (registry.getSingleMetric(AGE_GAUGE)) {
    return;
  }
  const log = deps.log.child({ module: "rotation-metrics" });

  new Gauge({
    name: AGE_GAUGE,
    help: "Seconds since the current version of each static secret became current, by secret name.",
    labelNames: ["secret"],
    registers: [registry],
    async collect() {
      this.reset();
      try {
        const result = await deps.db.execute(sql`
          select s.name, extract(epoch from (${deps.clock.now().toISOString()}::timestamptz - coalesce(v.promoted_at, v.created_at)))::float8 as age
          from secrets s join secret_versions v on v.secret_id = s.id and v.version = s.current_version
          where s.deleted_at is null and s.kind = 'static'`);
        for (const row of rowsOf<{ name: string; age: number }>(result)) {
          this.set({ secret: row.name }, Number(row.age));
        }
      } catch (error) {
        log.warn({ err: loggableError(error) }, "failed to read version ages for /metrics");
      }
    },
  });

  new Gauge({
    name: OVERDUE_GAUGE,
    help: "Secrets whose rotation is due and not started, or whose current version is older than the rotation policy's max_age.",
    registers: [registry],
    async collect() {
      try {
        const at = sql`${deps.clock.now().toISOString()}::timestamptz`;
        const result = await deps.db.execute(sql`
          select count(*)::int as overdue
          from secrets s left join secret_versions v on v.secret_id = s.id and v.version = s.current_version
          where s.deleted_at is null and (
            s.next_rotation_at < ${at}
            or (s.rotation ? 'max_age' and coalesce(v.promoted_at, v.created_at) + make_interval(secs => (s.rotation->>'max_age')::float8) < ${at}))`);
        this.set(rowsOf<{ overdue: number }>(result)[0]?.overdue ?? 0);
      } catch (error) {
        log.warn({ err: loggableError(error) }, "failed to count overdue rotations for /metrics");
      }
    },
  });
}
