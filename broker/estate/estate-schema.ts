import { z } from "@hono/zod-openapi";
import { grantFields, hasOneTarget } from "../grants/grant-schemas.js";
import { ApplicationCreate, ServiceAccountCreate } from "../register/register-schemas.js";
import { FederatedSubjectCreate, TrustedIssuerCreate, WorkloadKeyCreate } from "../register/trust-schemas.js";

const MAX_ENTRIES = 5000;

/** A service account in an estate file: it names its application instead of giving its id. */
export const EstateServiceAccount = ServiceAccountCreate.omit({ application_id: true }).extend({
  application: z.string().min(1).max(128),
  keys: z.array(WorkloadKeyCreate.shape.jwk).max(16).default([]),
  federated_subjects: z.array(FederatedSubjectCreate).max(64).default([]),
});

// The estate names a grant's service account instead of giving its id.
const { service_account_id: _accountId, ...grantFieldsWithoutAccount } = grantFields;

/** A grant in an estate file, for an account in the file or the register, to an audience or a registered secret. */
export const EstateGrant = z
  .strictObject({
    ...grantFieldsWithoutAccount,
    service_account: z.string().min(1).max(128),
  })
  .refine(hasOneTarget, { message: "give exactly one of secret or audience", path: ["secret"] });

/** A whole estate: applications, trusted issuers, service accounts and grants, imported in one transaction. */
export const Estate = z
  .strictObject({
    applications: z.array(ApplicationCreate).max(MAX_ENTRIES).default([]),
    trusted_issuers: z.array(TrustedIssuerCreate).max(MAX_ENTRIES).default([]),
    service_accounts: z.array(EstateServiceAccount).max(MAX_ENTRIES).default([]),
    grants: z.array(EstateGrant).max(MAX_ENTRIES).default([]),
  })
  .openapi("Estate");

export const EstateImportResult = z
  .object({
    dry_run: z.boolean(),
    applications: z.array(z.object({ name: z.string(), id: z.string() })),
    trusted_issuers: z.array(z.object({ issuer: z.string(), id: z.string() })),
    service_accounts: z.array(z.object({ name: z.string(), id: z.string() })),
    grants: z.array(z.object({ service_account: z.string(), id: z.string() })),
  })
  .openapi("EstateImportResult");

export type EstateInput = z.infer<typeof Estate>;
export type EstateImportResultView = z.infer<typeof EstateImportResult>;
