import type { SecretListEntry } from "@aws-sdk/client-secrets-manager";
import { SecretName } from "../secrets/secret-schemas.js";

/** Outcome of discovery for one AWS secret. */
export type DiscoveryAction = "register" | "registered" | "skip";

/** One AWS secret and the broker secret it maps to. */
export interface DiscoveredSecret {
  aws_name: string;
  arn: string;
  name: string;
  owner: string | null;
  application: string | null;
  /** The rotation Lambda, when AWS rotates the secret itself. */
  rotated_by: string | null;
  action: DiscoveryAction;
  /** Reason the secret is skipped, already registered or failed. */
  reason: string | null;
}

export interface DiscoveryOptions {
  /** Broker name prefix, such as `aws/`. */
  namePrefix: string;
  ownerTag: string;
  applicationTag: string;
  /** Owner for secrets without the owner tag; without it they are skipped. */
  defaultOwner?: string;
  /** Broker secret names in use, so that the dry run shows the names that --apply could not create. */
  takenNames?: Set<string>;
}

/** Broker secret names: lowercase path segments of letters, digits, '.', '_' or '-'. */
const INVALID_NAME_CHARACTERS = /[^a-z0-9._/-]+/g;
/** A one-character path that, appended to a valid prefix, makes a valid broker name. */
const SAMPLE_PATH = "x";

/**
 * Returns why `prefix` cannot start broker secret names, or null when it can. A valid
 * prefix followed by a valid path is a valid name, such as `aws/` or `team-a/aws-`.
 */
export function namePrefixProblem(prefix: string): string | null {
  const checked = SecretName.safeParse(`${prefix}${SAMPLE_PATH}`);
  return checked.success ? null : (checked.error.issues[0]?.message ?? "is not a valid start of a secret name");
}

/**
 * Maps AWS secrets to broker registrations. Tags `ownerTag` and `applicationTag` give the
 * owner and application. A secret whose ARN a broker secret already refers to is
 * `registered`; one without an owner is skipped.
 */
export function planDiscovery(entries: SecretListEntry[], registeredIds: Set<string>, options: DiscoveryOptions): DiscoveredSecret[] {
  const taken = new Set(options.takenNames ?? []);
  return entries.map((entry) => {
    const tags = new Map((entry.Tags ?? []).map((tag) => [tag.Key ?? "", tag.Value ?? ""]));
    const owner = tags.get(options.ownerTag) || options.defaultOwner || null;
    const discovered: DiscoveredSecret = {
      aws_name: entry.Name ?? "",
      arn: entry.ARN ?? "",
      name: brokerName(options.namePrefix, entry.Name ?? ""),
      owner,
      application: tags.get(options.applicationTag) || null,
      rotated_by: entry.RotationEnabled && entry.RotationLambdaARN ? entry.RotationLambdaARN : null,
      action: "register",
      reason: null,
    };
    if (registeredIds.has(discovered.arn) || registeredIds.has(discovered.aws_name)) {
      return { ...discovered, action: "registered", reason: "a broker secret already refers to it" };
    }
    if (owner === null) {
      return { ...discovered, action: "skip", reason: `no ${options.ownerTag} tag; tag the secret or give --default-owner` };
    }
    const nameCheck = SecretName.safeParse(discovered.name);
    if (!nameCheck.success) {
      const rule = nameCheck.error.issues[0]?.message ?? "is not a valid secret name";
      return { ...discovered, action: "skip", reason: `the broker name ${discovered.name} ${rule}; register this one by hand under another name` };
    }
    if (taken.has(discovered.name)) {
      return { ...discovered, action: "skip", reason: `the broker name ${discovered.name} is taken, by another secret or by an AWS name that differs only in case; register this one by hand under another name` };
    }
    taken.add(discovered.name);
    return discovered;
  });
}

/** Returns the POST /v1/secrets body that registers a discovered secret. */
export function registrationBody(secret: DiscoveredSecret, endpoint: string | undefined): Record<string, unknown> {
  const application = secret.application === null ? "" : `; application ${secret.application}`;
  return {
    name: secret.name,
    adapter: "aws-secrets-manager",
    kind: "static",
    owner: secret.owner,
    description: `discovered in AWS Secrets Manager as ${secret.aws_name}${application}`,
    settings: { secret_id: secret.arn, ...(endpoint === undefined ? {} : { endpoint }) },
  };
}

function brokerName(prefix: string, awsName: string): string {
  const path = awsName
    .toLowerCase()
    .replace(INVALID_NAME_CHARACTERS, "-")
    .split("/")
    .map((segment) => segment.replace(/^[^a-z0-9]+/, ""))
    .filter((segment) => segment.length > 0)
    .join("/");
  return `${prefix}${path}`;
}
