import type { TestBroker } from "../support/test-broker.js";
import { registerSnapshot } from "../support/register-fixtures.js";

export const DAY_MS = 24 * 60 * 60 * 1000;

/** Governance tables, compared before and after a rejected request together with the register tables. */
const GOVERNANCE_TABLES = ["access_reviews", "policy_exceptions", "leases"] as const;

/** Reads every row of the register and governance tables, ordered by id. */
export async function governanceSnapshot(broker: TestBroker): Promise<Record<string, unknown[]>> {
  const snapshot = await registerSnapshot(broker);
  for (const table of GOVERNANCE_TABLES) {
    snapshot[table] = await broker.query(`select * from ${table} order by id`);
  }
  return snapshot;
}

/** Returns the RFC 3339 time `days` days after the broker's current time (negative for the past). */
export function daysFromNow(broker: TestBroker, days: number): string {
  return new Date(broker.clock.now().getTime() + days * DAY_MS).toISOString();
}
