import { z } from "@hono/zod-openapi";
import { ApplicationCreate, ServiceAccountCreate } from "../register/register-schemas.js";
import { FederatedSubjectCreate, TrustedIssuerCreate, WorkloadKeyCreate } from "../register/trust-schemas.js";

const MAX_ENTRIES = 5000;

/** A service account in an estate file: it names its application instead of giving its id. */
export const EstateServiceAccount = ServiceAccountCreate.omit({ application_id: true }).extend({
  application: z.string().min(1).max(128),
  keys: z.array(WorkloadKeyCreate.shape.jwk).max(16).default([]),
  federated_subjects: z.array(FederatedSubjectCreate).max(64).default([]),
});

/** A whole estate: applications, trusted issuers and service accounts, imported in one transaction. */
export const Estate = z
  .strictObject({
    applications: z.array(ApplicationCreate).max(MAX_ENTRIES).default([]),
    trusted_issuers: z.array(TrustedIssuerCreate).max(MAX_ENTRIES).default([]),
    service_accounts: z.array(EstateServiceAccount).max(MAX_ENTRIES).default([]),
  })
  .openapi("Estate");

export const EstateImportResult = z
  .object({
    dry_run: z.boolean(),
    applications: z.array(z.object({ name: z.string(), id: z.string() })),
    trusted_issuers: z.array(z.object({ issuer: z.string(), id: z.string() })),
    service_accounts: z.array(z.object({ name: z.string(), id: z.string() })),
  })
  .openapi("EstateImportResult");

export type EstateInput = z.infer<typeof Estate>;
export type EstateImportResultView = z.infer<typeof EstateImportResult>;
