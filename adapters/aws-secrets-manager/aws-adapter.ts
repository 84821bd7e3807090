import type {
  AdapterCall,
  CreatePendingRequest,
  GeneratePolicy,
  IssuedCredential,
  IssueRequest,
  PendingVersion,
  SecretAdapter,
  SecretKind,
  UpstreamLease,
  UpstreamRotation,
  VersionRef,
} from "../contract.js";
import { generateValue } from "../local/generate-value.js";
import { ConnectionPools } from "../postgres/connection-pools.js";
import { type AwsCall, prepareAwsCall } from "./aws-call.js";
import { AwsClients, type AwsCredentials } from "./aws-clients.js";
import { AWSCURRENT, getSecretValue, resolveSecretArn } from "./aws-operations.js";
import { DEFAULT_STAGE, parseAwsSettings } from "./aws-settings.js";
import { checkDatabaseRegistration } from "./database-registration.js";
import { checkDatabaseLogin, isAlternating, newDatabaseValue, retireDatabaseRole, setDatabasePassword } from "./database-rotation.js";
import { describeAwsRotation } from "./external-rotation.js";
import { replaceField, toSecretData } from "./secret-value.js";
import { adoptCurrentVersion, createPendingVersion, discardPendingVersion, promotePendingVersion, readPendingVersion } from "./staged-rotation.js";

export const AWS_ADAPTER = "aws-secrets-manager";
/** Seconds a PostgreSQL connection of a database secret may take to connect. */
const DATABASE_CONNECT_TIMEOUT_SECONDS = 10;
const DATABASE_IDLE_TIMEOUT_SECONDS = 30;
/** Generate policy of a rotation when the secret has none: 32 letters and digits in field `password` of a JSON value. */
const DEFAULT_GENERATE: GeneratePolicy = { length: 32, classes: ["lower", "upper", "digits"], field: "password" };

export interface AwsAdapterOptions {
  /** Credentials for every request; without them the SDK's default provider chain finds them. */
  credentials?: AwsCredentials;
}

/**
 * Static secrets kept in AWS Secrets Manager, following its staging labels. A leased read
 * is GetSecretValue of `settings.version_stage` (AWSCURRENT) or `settings.version_id`,
 * and the lease records the VersionId. A rotation runs the four steps on AWSPENDING and
 * AWSCURRENT, with the rotation's token as ClientRequestToken. For a database secret it
 * also sets and checks the PostgreSQL role's password. Values stay in AWS: the broker keeps
 * VersionIds and fingerprints only.
 */
export class AwsSecretsManagerAdapter implements SecretAdapter {
  readonly name = AWS_ADAPTER;
  readonly kinds: readonly SecretKind[] = ["static"];

  readonly #clients: AwsClients;
  readonly #pools = new ConnectionPools({ connectTimeoutSeconds: DATABASE_CONNECT_TIMEOUT_SECONDS, idleTimeoutSeconds: DATABASE_IDLE_TIMEOUT_SECONDS });

  constructor(options: AwsAdapterOptions = {}) {
    this.#clients = new AwsClients(options.credentials);
  }

  parseSettings(kind: SecretKind, settings: unknown): Record<string, unknown> {
    return parseAwsSettings(kind, settings) as unknown as Record<string, unknown>;
  }

  /**
   * Returns the AWS secret, by the name or ARN the settings give, in its region and at its
   * endpoint. Registration stores the ARN (`resolveSettings`), so one AWS secret has one key.
   */
  upstreamKey(settings: Record<string, unknown>): string | null {
    const { secret_id: secretId, region, endpoint } = settings as { secret_id: string; region?: string; endpoint?: string };
    return `${endpoint ?? "aws"} ${region ?? "default region"} ${secretId}`;
  }

  /** Replaces `secret_id` with the secret's full ARN, read with DescribeSecret. */
  async resolveSettings(call: AdapterCall): Promise<Record<string, unknown>> {
    return (await resolveSecretArn(this.#prepare(call))) as unknown as Record<string, unknown>;
  }

  async issue(call: AdapterCall, _request: IssueRequest): Promise<IssuedCredential> {
    const aws = this.#prepare(call);
    const { version_id: versionId, version_stage: stage } = aws.settings;
    const value = await getSecretValue(aws, versionId === undefined ? { stage: stage ?? DEFAULT_STAGE } : { versionId });
    return { data: toSecretData(value), version: value.VersionId ?? null, upstreamLeaseId: null };
  }

  /** A read has no upstream lease to extend. */
  async renew(_call: AdapterCall, _lease: UpstreamLease, _expiresAt: Date): Promise<void> {}

  /** A read has no upstream credential to end; rotation replaces the value. */
  async revoke(_call: AdapterCall, _lease: UpstreamLease): Promise<void> {}

  async createPending(call: AdapterCall, request: CreatePendingRequest): Promise<PendingVersion> {
    const aws = this.#prepare(call);
    if (request.rotationId === null) {
      return adoptCurrentVersion(aws, request, async (current) => {
        if (aws.settings.database !== undefined) {
          await checkDatabaseRegistration(this.#pools, aws, current);
        }
      });
    }
    return createPendingVersion(aws, request.rotationId, request, (current) => this.#newValue(aws, current));
  }

  /** Sets the database role's password to the pending one; other secrets have nothing to change outside AWS. */
  async setPending(call: AdapterCall, pending: VersionRef): Promise<void> {
    const aws = this.#prepare(call);
    if (aws.settings.database !== undefined) {
      await setDatabasePassword(this.#pools, aws, await getSecretValue(aws, { versionId: pending.version }));
    }
  }

  /** Reads AWSPENDING, checks it is the rotation's version, and for a database secret logs in with it. */
  async testPending(call: AdapterCall, pending: VersionRef): Promise<void> {
    const aws = this.#prepare(call);
    const value = await readPendingVersion(aws, pending);
    if (aws.settings.database !== undefined) {
      await checkDatabaseLogin(aws, value, DATABASE_CONNECT_TIMEOUT_SECONDS);
    }
  }

  async finishPending(call: AdapterCall, pending: VersionRef, _previous: VersionRef | null): Promise<void> {
    await promotePendingVersion(this.#prepare(call), pending);
  }

  /**
   * Puts the current password back on a database role first, then the staging labels.
   * With alternating users the pending role also gets a random password, so that the
   * discarded value does not stay a working login.
   */
  async discardPending(call: AdapterCall, pending: VersionRef, current: VersionRef | null): Promise<void> {
    const aws = this.#prepare(call);
    if (aws.settings.database !== undefined && current !== null) {
      const currentValue = await getSecretValue(aws, { versionId: current.version });
      await setDatabasePassword(this.#pools, aws, currentValue);
      if (isAlternating(aws)) {
        await retireDatabaseRole(this.#pools, aws, await getSecretValue(aws, { versionId: pending.version }), currentValue);
      }
    }
    await discardPendingVersion(aws, pending, current);
  }

  /**
   * Ends the login of an older version of an alternating-users database secret: its role
   * gets a random password, unless AWSCURRENT names the same role. Other secrets have
   * nothing to end, because the set step already replaced the only password.
   */
  async retireVersion(call: AdapterCall, retired: VersionRef): Promise<void> {
    const aws = this.#prepare(call);
    if (aws.settings.database === undefined || !isAlternating(aws)) {
      return;
    }
    const retiredValue = await getSecretValue(aws, { versionId: retired.version });
    await retireDatabaseRole(this.#pools, aws, retiredValue, await getSecretValue(aws, { stage: AWSCURRENT }));
  }

  /** Reads RotationEnabled, the rotation Lambda and RotationRules with DescribeSecret. */
  async describeRotation(call: AdapterCall): Promise<UpstreamRotation> {
    return describeAwsRotation(this.#prepare(call));
  }

  async close(): Promise<void> {
    this.#clients.close();
    await this.#pools.closeAll();
  }

  #prepare(call: AdapterCall): AwsCall {
    return prepareAwsCall(this.#clients, call);
  }

  #newValue(aws: AwsCall, current: Awaited<ReturnType<typeof getSecretValue>>): string {
    if (aws.settings.database !== undefined) {
      return newDatabaseValue(aws, current);
    }
    const policy = aws.call.secret.generate ?? DEFAULT_GENERATE;
    return replaceField(aws.context.secretName, current, policy.field, generateValue(policy));
  }
}
