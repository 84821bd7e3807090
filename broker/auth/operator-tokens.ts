import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { and, asc, eq, gt, isNull, sql } from "drizzle-orm";
import type { Clock } from "../config/clock.js";
import type { Executor } from "../db/database.js";
import { newId } from "../db/ids.js";
import { operatorTokens } from "../db/schema.js";
import { Conflict, NotFound } from "../errors.js";
import type { Role } from "./roles.js";

/** 32 random bytes: 256 bits, the minimum for a bearer token here. */
const TOKEN_SECRET_BYTES = 32;
const TOKEN_PATTERN = /^sbo_(tok_[0-9a-f]{24})\.([A-Za-z0-9_-]{43})$/;

export type OperatorTokenRow = typeof operatorTokens.$inferSelect;

/** An authenticated operator: the token's id, name and role. Never the token itself. */
export interface Operator {
  tokenId: string;
  name: string;
  role: Role;
}

export interface NewOperatorToken {
  role: Role;
  name: string;
  expiresAt: Date | null;
  createdBy: string;
}

/** Creates a token and returns its row with the bearer value, which is shown once and stored only as a hash. */
export async function createOperatorToken(
  tx: Executor,
  clock: Clock,
  input: NewOperatorToken,
): Promise<{ row: OperatorTokenRow; token: string }> {
  const id = newId("tok");
  const secret = randomBytes(TOKEN_SECRET_BYTES).toString("base64url");
  const [row] = await tx
    .insert(operatorTokens)
    .values({
      id,
      name: input.name,
      role: input.role,
      secretHash: hashSecret(secret),
      createdAt: clock.now(),
      createdBy: input.createdBy,
      expiresAt: input.expiresAt,
    })
    .returning();
  return { row: row!, token: `sbo_${id}.${secret}` };
}

export type AuthenticationFailure = "malformed" | "unknown" | "mismatch" | "revoked" | "expired";

/**
 * Looks the token up by its id and compares the secret's hash in constant time.
 * Returns the operator, or the reason for refusal (kept for the audit event, not shown to the caller).
 */
export async function authenticateOperatorToken(
  db: Executor,
  clock: Clock,
  bearer: string,
): Promise<{ operator: Operator } | { failure: AuthenticationFailure; tokenId?: string }> {
  const match = TOKEN_PATTERN.exec(bearer);
  if (!match) {
    return { failure: "malformed" };
  }
  const [, tokenId, secret] = match as unknown as [string, string, string];

  const [row] = await db.select().from(operatorTokens).where(eq(operatorTokens.id, tokenId));
  const presented = Buffer.from(hashSecret(secret), "hex");
  if (!row) {
    timingSafeEqual(presented, presented);
    return { failure: "unknown", tokenId };
  }
  if (!timingSafeEqual(presented, Buffer.from(row.secretHash, "hex"))) {
    return { failure: "mismatch", tokenId };
  }
  if (row.revokedAt) {
    return { failure: "revoked", tokenId };
  }
  if (row.expiresAt && row.expiresAt.getTime() <= clock.now().getTime()) {
    return { failure: "expired", tokenId };
  }
  return { operator: { tokenId: row.id, name: row.name, role: row.role as Role } };
}

/**
 * Revokes a token. Refuses to revoke the last usable admin token, because nobody could
 * then manage tokens without direct database access.
 */
export async function revokeOperatorToken(
  tx: Executor,
  clock: Clock,
  tokenId: string,
  revokedBy: string,
): Promise<OperatorTokenRow> {
  const [row] = await tx.select().from(operatorTokens).where(eq(operatorTokens.id, tokenId)).for("update");
  if (!row) {
    throw new NotFound("operator token", tokenId);
  }
  if (row.revokedAt) {
    return row;
  }
  if (row.role === "admin" && (await countUsableAdmins(tx, clock)) <= 1) {
    throw new Conflict(`operator token ${tokenId} is the last usable admin token; create another admin token before revoking it`);
  }

  const [updated] = await tx
    .update(operatorTokens)
    .set({ revokedAt: clock.now(), revokedBy })
    .where(eq(operatorTokens.id, tokenId))
    .returning();
  return updated!;
}

async function countUsableAdmins(tx: Executor, clock: Clock): Promise<number> {
  const now = clock.now();
  const rows = await tx
    .select({ id: operatorTokens.id })
    .from(operatorTokens)
    .where(
      and(
        eq(operatorTokens.role, "admin"),
        isNull(operatorTokens.revokedAt),
        sql`(${operatorTokens.expiresAt} is null or ${operatorTokens.expiresAt} > ${now.toISOString()}::timestamptz)`,
      ),
    )
    .for("update");
  return rows.length;
}

export async function listOperatorTokens(db: Executor, afterId: string | undefined, limit: number): Promise<OperatorTokenRow[]> {
  return db
    .select()
    .from(operatorTokens)
    .where(afterId ? gt(operatorTokens.id, afterId) : undefined)
    .orderBy(asc(operatorTokens.id))
    .limit(limit);
}

function hashSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}
