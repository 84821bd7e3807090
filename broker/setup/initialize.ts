import { eq } from "drizzle-orm";
import { auditedTransaction, type AuditDeps } from "../audit/audit-writer.js";
import type { RequestContext } from "../audit/audit-types.js";
import { createOperatorToken } from "../auth/operator-tokens.js";
import type { MasterKeyRing } from "../crypto/master-key-ring.js";
import { createSigningKey, DEFAULT_SIGNING_ALGORITHM, type SigningAlgorithm } from "../crypto/signing-keys.js";
import type { Executor } from "../db/database.js";
import { brokerState } from "../db/schema.js";
import { BrokerError } from "../errors.js";

const INITIALIZED_KEY = "initialized_at";

export class AlreadyInitialized extends BrokerError {
  override name = "AlreadyInitialized";

  constructor() {
    super("already_initialized", "the broker database is already initialized; create further tokens with `secrets-broker token create`");
  }
}

export async function isInitialized(db: Executor): Promise<boolean> {
  const rows = await db.select().from(brokerState).where(eq(brokerState.key, INITIALIZED_KEY));
  return rows.length > 0;
}

/**
 * Initializes an empty database: the first signing key, sealed under the current master
 * key, and the first admin token.
 * Returns the admin token, which exists nowhere else in clear text. Of several
 * replicas starting at once on one database, exactly one succeeds; the others get
 * `AlreadyInitialized`.
 */
export async function initializeBroker(
  deps: AuditDeps,
  masterKeys: MasterKeyRing,
  context: RequestContext,
  alg: SigningAlgorithm = DEFAULT_SIGNING_ALGORITHM,
): Promise<{ adminToken: string; adminTokenId: string; signingKeyId: string }> {
  return auditedTransaction(deps, context, async (tx, record) => {
    const now = deps.clock.now();
    const claimed = await tx
      .insert(brokerState)
      .values({ key: INITIALIZED_KEY, value: now.toISOString(), updatedAt: now })
      .onConflictDoNothing()
      .returning();
    if (claimed.length === 0) {
      throw new AlreadyInitialized();
    }

    const signingKeyId = await createSigningKey(tx, masterKeys, deps.clock, alg);
    const { row, token } = await createOperatorToken(tx, deps.clock, {
      role: "admin",
      name: "initial-admin",
      expiresAt: null,
      createdBy: context.actor,
    });

    record({ action: "broker.initialize", target: null, details: { signing_key_id: signingKeyId } });
    record({ action: "operator_token.create", target: row.id, details: { role: "admin", name: row.name } });
    return { adminToken: token, adminTokenId: row.id, signingKeyId };
  });
}
