import { randomBytes, randomUUID } from "node:crypto";
import { AwsError, invalidParameter, invalidRequest, resourceNotFound } from "./standin-error.js";

export const AWSCURRENT = "AWSCURRENT";
export const AWSPENDING = "AWSPENDING";
export const AWSPREVIOUS = "AWSPREVIOUS";

/** ClientRequestToken length bounds of PutSecretValue and CreateSecret, in characters. */
const TOKEN_MIN_LENGTH = 32;
const TOKEN_MAX_LENGTH = 64;
const ACCOUNT_ID = "123456789012";

/** One version of a secret. A version without staging labels is deprecated. */
export interface StoredVersion {
  versionId: string;
  secretString?: string;
  /** SecretBinary as the wire carries it: base64. */
  secretBinary?: string;
  stages: Set<string>;
  createdDate: Date;
}

/** AWS RotationRules: AutomaticallyAfterDays, or ScheduleExpression (rate() or cron()) with an optional Duration window. */
export interface RotationRules {
  AutomaticallyAfterDays?: number;
  ScheduleExpression?: string;
  Duration?: string;
}

export interface StoredSecret {
  arn: string;
  name: string;
  description?: string;
  tags: { Key: string; Value: string }[];
  versions: Map<string, StoredVersion>;
  createdDate: Date;
  lastChangedDate: Date;
  lastRotatedDate?: Date;
  deletedDate?: Date;
  rotationEnabled?: boolean;
  rotationLambdaArn?: string;
  rotationRules?: RotationRules;
}

export interface NewValue {
  secretString?: string;
  secretBinary?: string;
}

/**
 * The state of the stand-in: secrets by name, each with versions and staging labels.
 * Each label is on at most one version of a secret, as in Secrets Manager.
 */
export class StandinStore {
  readonly secrets = new Map<string, StoredSecret>();

  constructor(readonly region: string) {}

  /** Resolves a SecretId given as a name or a full ARN. */
  find(secretId: unknown, options: { allowDeleted?: boolean } = {}): StoredSecret {
    if (typeof secretId !== "string" || secretId === "") {
      throw invalidParameter("SecretId is required.");
    }
    const secret = this.secrets.get(secretId) ?? [...this.secrets.values()].find((candidate) => candidate.arn === secretId);
    if (!secret) {
      throw resourceNotFound();
    }
    if (secret.deletedDate && !options.allowDeleted) {
      throw invalidRequest("You can't perform this operation on the secret because it was marked for deletion.");
    }
    return secret;
  }

  create(name: string, value: NewValue | undefined, token: string | undefined, extra: Partial<StoredSecret> = {}): StoredSecret {
    if (this.secrets.has(name)) {
      throw new AwsError("ResourceExistsException", `The operation failed because the secret ${name} already exists.`);
    }
    const now = new Date();
    const secret: StoredSecret = {
      arn: `arn:aws:secretsmanager:${this.region}:${ACCOUNT_ID}:secret:${name}-${randomBytes(3).toString("hex")}`,
      name,
      tags: [],
      versions: new Map(),
      createdDate: now,
      lastChangedDate: now,
      ...extra,
    };
    this.secrets.set(name, secret);
    if (value) {
      this.put(secret, value, token ?? randomUUID(), [AWSCURRENT]);
    }
    return secret;
  }

  /**
   * Adds a version with `stages`, moving each label from the version that had it. Moving
   * AWSCURRENT moves AWSPREVIOUS to the version it left. A token already used with the
   * same value is ignored; with another value it is ResourceExistsException.
   */
  put(secret: StoredSecret, value: NewValue, token: string, stages: string[]): StoredVersion {
    checkToken(token);
    const existing = secret.versions.get(token);
    if (existing) {
      if (existing.secretString === value.secretString && existing.secretBinary === value.secretBinary) {
        return existing;
      }
      throw new AwsError("ResourceExistsException", "You can't modify an existing version, you can only create a new version.");
    }

    const version: StoredVersion = { versionId: token, ...value, stages: new Set(), createdDate: new Date() };
    secret.versions.set(token, version);
    for (const stage of stages) {
      this.attach(secret, stage, version);
    }
    secret.lastChangedDate = new Date();
    return version;
  }

  /** Returns the version that has `stage`, if any. */
  withStage(secret: StoredSecret, stage: string): StoredVersion | undefined {
    return [...secret.versions.values()].find((version) => version.stages.has(stage));
  }

  /** Attaches `stage` to `target`, taking it off the version that had it. */
  attach(secret: StoredSecret, stage: string, target: StoredVersion): void {
    const holder = this.withStage(secret, stage);
    if (holder === target) {
      return;
    }
    holder?.stages.delete(stage);
    target.stages.add(stage);
    if (stage === AWSCURRENT && holder) {
      this.attach(secret, AWSPREVIOUS, holder);
    }
  }

  /** VersionIdsToStages of DescribeSecret: every version that has a label. */
  versionIdsToStages(secret: StoredSecret): Record<string, string[]> {
    const map: Record<string, string[]> = {};
    for (const version of secret.versions.values()) {
      if (version.stages.size > 0) {
        map[version.versionId] = [...version.stages];
      }
    }
    return map;
  }
}

function checkToken(token: string): void {
  if (token.length < TOKEN_MIN_LENGTH || token.length > TOKEN_MAX_LENGTH) {
    throw new AwsError(
      "ValidationException",
      `1 validation error detected: Value at 'clientRequestToken' failed to satisfy constraint: Member must have length between ${TOKEN_MIN_LENGTH} and ${TOKEN_MAX_LENGTH}`,
    );
  }
}
