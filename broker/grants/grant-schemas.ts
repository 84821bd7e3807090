import { z } from "@hono/zod-openapi";
import { idParams, idSchema, Rfc3339 } from "../http/common-schemas.js";
import { Audience, Owner, ScopeToken, uniqueList } from "../register/register-schemas.js";
import { MAX_SECRET_TTL_SECONDS, MIN_SECRET_TTL_SECONDS, SecretName } from "../secrets/secret-schemas.js";

export const GRANT_STATUSES = ["active", "not_yet_valid", "expired", "revoked"] as const;
export type GrantStatus = (typeof GRANT_STATUSES)[number];

const MaxTtl = z.number().int().min(MIN_SECRET_TTL_SECONDS).max(MAX_SECRET_TTL_SECONDS);
const Justification = z.string().trim().min(1, "must not be empty").max(2000);

/** Fields of a new grant, shared with the grants of an estate file. */
export const grantFields = {
  service_account_id: idSchema("sa", "service account"),
  secret: SecretName.optional().openapi({ description: "Name of the secret this grant allows; or give audience." }),
  audience: Audience.optional().openapi({ description: "Access-token audience this grant allows; or give secret." }),
  scopes: uniqueList(ScopeToken, 64)
    .default([])
    .openapi({ description: "Scopes the workload's access token must carry to use this grant." }),
  max_ttl: MaxTtl.optional().openapi({ description: "Cap on the TTL of credentials issued under this grant, in seconds." }),
  not_before: Rfc3339.optional(),
  not_after: Rfc3339.optional().openapi({ description: "End of the grant; required for supplier accounts." }),
  approved_by: Owner.optional(),
  justification: Justification.optional().openapi({ description: "Ticket or contract reference." }),
};

/** Checks that a grant names exactly one of secret or audience. */
export function hasOneTarget(value: { secret?: string | undefined; audience?: string | undefined }): boolean {
  return (value.secret === undefined) !== (value.audience === undefined);
}

export const GrantCreate = z
  .strictObject(grantFields)
  .refine(hasOneTarget, {
    message: "give exactly one of secret or audience",
    path: ["secret"],
  })
  .openapi("GrantCreate");

export const GrantUpdate = z
  .strictObject({
    scopes: uniqueList(ScopeToken, 64).optional(),
    max_ttl: MaxTtl.nullable().optional(),
    not_after: Rfc3339.nullable().optional(),
    approved_by: Owner.nullable().optional(),
    justification: Justification.nullable().optional(),
  })
  .refine((value) => Object.keys(value).length > 0, "must change at least one field")
  .openapi("GrantUpdate");

export const Grant = z
  .object({
    id: z.string(),
    service_account_id: z.string(),
    secret_id: z.string().nullable(),
    secret: z.string().nullable(),
    audience: z.string().nullable(),
    scopes: z.array(z.string()),
    max_ttl: z.number().int().nullable(),
    not_before: z.string().nullable(),
    not_after: z.string().nullable(),
    approved_by: z.string().nullable(),
    justification: z.string().nullable(),
    status: z.enum(GRANT_STATUSES),
    created_at: z.string(),
    created_by: z.string(),
    updated_at: z.string(),
    revoked_at: z.string().nullable(),
    revoked_by: z.string().nullable(),
    revoke_reason: z.string().nullable(),
  })
  .openapi("Grant");

export const GrantFilter = z.strictObject({
  service_account_id: idSchema("sa", "service account").optional(),
  secret_id: idSchema("sec", "secret").optional(),
  audience: Audience.optional(),
  status: z.enum(GRANT_STATUSES).optional(),
});

export const GrantIdParams = idParams("grt", "grant");

export type GrantCreateInput = z.infer<typeof GrantCreate>;
export type GrantUpdateInput = z.infer<typeof GrantUpdate>;
export type GrantFilterInput = z.infer<typeof GrantFilter>;
export type GrantView = z.infer<typeof Grant>;
