import { and, eq, isNull } from "drizzle-orm";
import type { Executor } from "../db/database.js";
import { grants } from "../db/schema.js";
import { GrantExpired, InsufficientScope, NoGrant } from "../errors.js";
import { grantStatus, type GrantRow } from "./grant-types.js";

/** The account, secret and token scopes of a credential request, for grant selection and its messages. */
export interface GrantQuery {
  serviceAccountId: string;
  /** The secret's id, or undefined when no live secret has the requested name. */
  secretId: string | undefined;
  secretName: string;
  /** Scopes of the access token the workload presented. */
  tokenScopes: string[];
}

/**
 * Picks, from the account's unrevoked grants for the secret (`candidates`), the grant
 * that lets the service account obtain the secret now. Of several usable
 * grants the one that lasts longest wins. Without one it throws the reason:
 * - `NoGrant`: no unrevoked grant for this account and secret, or no such secret, so
 *   that secret names cannot be probed;
 * - `GrantExpired`: every such grant is outside its validity window;
 * - `InsufficientScope`: a grant is valid, but the token lacks one of its scopes.
 */
export function chooseSecretGrant(candidates: GrantRow[], query: GrantQuery, now: Date): GrantRow {
  if (candidates.length === 0) {
    throw new NoGrant(
      `no grant allows service account ${query.serviceAccountId} to obtain secret '${query.secretName}'; ask an operator to create one (POST /v1/grants)`,
    );
  }

  const inWindow = candidates.filter((grant) => grantStatus(grant, now) === "active");
  if (inWindow.length === 0) {
    throw new GrantExpired(`every grant of service account ${query.serviceAccountId} for secret '${query.secretName}' is outside its validity window: ${describeWindows(candidates, now)}`);
  }

  const scoped = inWindow.filter((grant) => grant.scopes.every((scope) => query.tokenScopes.includes(scope)));
  if (scoped.length === 0) {
    const needed = inWindow[0]!.scopes;
    throw new InsufficientScope(
      `grant ${inWindow[0]!.id} for secret '${query.secretName}' requires scope ${needed.join(" ")}; the access token carries ${query.tokenScopes.join(" ") || "no scope"}: request a token with scope="${needed.join(" ")}"`,
    );
  }
  return scoped.sort(byLongestLasting)[0]!;
}

function describeWindows(candidates: GrantRow[], now: Date): string {
  return candidates
    .map((grant) =>
      grantStatus(grant, now) === "expired"
        ? `${grant.id} ended at ${grant.notAfter!.toISOString()}`
        : `${grant.id} starts at ${grant.notBefore!.toISOString()}`,
    )
    .join("; ");
}

function byLongestLasting(left: GrantRow, right: GrantRow): number {
  const leftEnd = left.notAfter?.getTime() ?? Number.POSITIVE_INFINITY;
  const rightEnd = right.notAfter?.getTime() ?? Number.POSITIVE_INFINITY;
  if (leftEnd !== rightEnd) {
    return rightEnd > leftEnd ? 1 : -1;
  }
  return (right.maxTtl ?? Number.MAX_SAFE_INTEGER) - (left.maxTtl ?? Number.MAX_SAFE_INTEGER);
}

/**
 * Finds the grant that lets a service account obtain an access token for `audience`
 * beyond its allowed audiences: an unrevoked grant in its window, the longest lasting
 * first. Without one it returns the grants outside their window, for the error message.
 */
export async function selectAudienceGrant(
  db: Executor,
  serviceAccountId: string,
  audience: string,
  now: Date,
): Promise<{ grant: GrantRow } | { outsideWindow: GrantRow[] }> {
  const candidates = await db
    .select()
    .from(grants)
    .where(and(eq(grants.serviceAccountId, serviceAccountId), eq(grants.audience, audience), isNull(grants.revokedAt)));
  const usable = candidates.filter((grant) => grantStatus(grant, now) === "active").sort(byLongestLasting);
  return usable[0] ? { grant: usable[0] } : { outsideWindow: candidates };
}
