import { z } from "@hono/zod-openapi";

const JwkObject = z.record(z.string(), z.unknown()).openapi({ description: "A public JSON Web Key (RFC 7517)." });

/** `https` URL, or `http` on a loopback host for local test issuers. */
const IssuerUrl = z
  .url({ message: "must be an absolute URL" })
  .max(512)
  .refine(
    (value) => {
      // zod runs this check even after z.url() failed; that failure is already reported.
      if (!URL.canParse(value)) {
        return true;
      }
      const url = new URL(value);
      return url.protocol === "https:" || (url.protocol === "http:" && ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname));
    },
    "must use https (http is allowed only for localhost and 127.0.0.1)",
  );

export const WorkloadKeyCreate = z.strictObject({ jwk: JwkObject }).openapi("WorkloadKeyCreate");

export const WorkloadKey = z
  .object({
    id: z.string(),
    service_account_id: z.string(),
    kid: z.string(),
    alg: z.string(),
    jwk: JwkObject,
    created_at: z.string(),
  })
  .openapi("WorkloadKey");

export const TrustedIssuerCreate = z
  .strictObject({
    issuer: z.string().min(1).max(512),
    jwks: z.strictObject({ keys: z.array(JwkObject).min(1).max(32) }).optional(),
    jwks_uri: IssuerUrl.optional(),
    audiences: z.array(z.string().min(1).max(512)).max(32).default([]),
  })
  .refine((value) => (value.jwks === undefined) !== (value.jwks_uri === undefined), {
    message: "give exactly one of jwks (inline keys) or jwks_uri",
    path: ["jwks"],
  })
  .openapi("TrustedIssuerCreate");

export const TrustedIssuer = z
  .object({
    id: z.string(),
    issuer: z.string(),
    jwks: z.object({ keys: z.array(JwkObject) }).nullable(),
    jwks_uri: z.string().nullable(),
    audiences: z.array(z.string()),
    created_at: z.string(),
    updated_at: z.string(),
  })
  .openapi("TrustedIssuer");

/** Claim values that bind a subject token to an account, e.g. GitHub's `repository_id`. */
const BindingClaims = z.record(
  z.string().regex(/^[A-Za-z0-9_.:\-/]{1,128}$/, "claim names are 1-128 characters of letters, digits and _ . : - /"),
  z.string().min(1).max(512),
);

export const FederatedSubjectCreate = z
  .strictObject({
    issuer: z.string().min(1).max(512),
    subject: z.string().min(1).max(512),
    claims: BindingClaims.default({}),
  })
  .openapi("FederatedSubjectCreate");

export const FederatedSubject = z
  .object({
    id: z.string(),
    service_account_id: z.string(),
    issuer: z.string(),
    issuer_id: z.string(),
    subject: z.string(),
    claims: z.record(z.string(), z.string()),
    created_at: z.string(),
  })
  .openapi("FederatedSubject");

export type WorkloadKeyView = z.infer<typeof WorkloadKey>;
export type TrustedIssuerCreateInput = z.infer<typeof TrustedIssuerCreate>;
export type TrustedIssuerView = z.infer<typeof TrustedIssuer>;
export type FederatedSubjectCreateInput = z.infer<typeof FederatedSubjectCreate>;
export type FederatedSubjectView = z.infer<typeof FederatedSubject>;
