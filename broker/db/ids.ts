import { randomBytes } from "node:crypto";

/** Id prefixes by resource; a service account's id is also its OAuth `client_id`. */
export const ID_PREFIX = {
  application: "app",
  serviceAccount: "sa",
  workloadKey: "key",
  trustedIssuer: "iss",
  federatedSubject: "fed",
  operatorToken: "tok",
  lease: "lease",
  secret: "sec",
  grant: "grt",
  rotation: "rot",
  accessReview: "rev",
  policyException: "exc",
} as const;

export type IdPrefix = (typeof ID_PREFIX)[keyof typeof ID_PREFIX];

/** Random part of an id: 12 bytes (96 bits) as 24 lowercase hex characters. */
const ID_RANDOM_BYTES = 12;

export function newId(prefix: IdPrefix): string {
  return `${prefix}_${randomBytes(ID_RANDOM_BYTES).toString("hex")}`;
}

export function idPattern(prefix: IdPrefix): RegExp {
  return new RegExp(`^${prefix}_[0-9a-f]{${ID_RANDOM_BYTES * 2}}$`);
}
