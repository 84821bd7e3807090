/**
 * The contract between the broker and an upstream secret store. Every adapter (local,
 * postgres, vault, aws-secrets-manager) implements `SecretAdapter`. An adapter never
 * sees the broker's database: the broker passes in what it stored and keeps what the
 * adapter returns. Each call gets an AbortSignal that fires at its timeout; an adapter
 * passes it on to its client where the client supports it, and the broker gives up on
 * the call when it fires either way.
 */

export type SecretKind = "static" | "dynamic";

/** Field names to string values, as handed to the workload in `data`. */
export type SecretData = Record<string, string>;

/** Policy by which an adapter that generates values (the local adapter, rotations) makes a new one. */
export interface GeneratePolicy {
  /** Characters in the value. */
  length: number;
  /** Character classes drawn from: `lower`, `upper`, `digits`, `symbols`; each appears at least once. */
  classes: ("lower" | "upper" | "digits" | "symbols")[];
  /** Field of `data` that contains the generated value. */
  field: string;
}

/** The secret a call is about, with its adapter settings as `parseSettings` returned them. */
export interface SecretRef {
  id: string;
  name: string;
  kind: SecretKind;
  settings: Record<string, unknown>;
  /** The secret's generation policy, when it has one. */
  generate: GeneratePolicy | null;
}

/** A stored version, as the broker keeps it. */
export interface VersionRef {
  /** The upstream's version id: a counter for the local adapter and Vault KV, a VersionId for AWS. */
  version: string;
  /** Data the adapter asked the broker to keep for this version (the local adapter's ciphertext), or null. */
  sealedValue: string | null;
}

/** Per-call context. */
export interface AdapterCall {
  secret: SecretRef;
  /** Fires when the call's timeout passes or the broker shuts down. */
  signal: AbortSignal;
  /**
   * Reads the current value of another secret kept by the local adapter, by name, such
   * as the admin password a PostgreSQL secret's settings refer to. Rejects with an error
   * whose `code` is `invalid_state` when no live local static secret with a current
   * version has that name.
   */
  readLocalSecret(name: string): Promise<SecretData>;
}

export interface IssueRequest {
  /** The broker's lease id for this credential; adapters may use it to label upstream objects. */
  leaseId: string;
  /** When the broker's lease expires; a dynamic credential should not outlive it. */
  expiresAt: Date;
  /** The current version of a static secret; null for a dynamic secret without versions. */
  current: VersionRef | null;
}

export interface IssuedCredential {
  data: SecretData;
  /** The version handed out, when the upstream reports one (static secrets). */
  version: string | null;
  /** For a dynamic credential, the upstream id that renew and revoke take (a role name, a Vault lease id). */
  upstreamLeaseId: string | null;
  /** An upstream that caps the lifetime (Vault's lease_duration) reports it; the broker takes the earlier expiry. */
  expiresAt?: Date;
}

export interface UpstreamLease {
  upstreamLeaseId: string;
}

/** The outcome of a renewal upstream. */
export interface RenewedCredential {
  /**
   * When the upstream credential now expires, for an upstream that may grant less than
   * asked (Vault caps a renewal at the lease's max TTL). The broker's lease ends no later.
   */
  expiresAt?: Date;
}

/** The upstream credentials `revokeAll` ended: every one whose upstream lease id starts with `upstreamLeaseIdPrefix`. */
export interface RevokedAll {
  upstreamLeaseIdPrefix: string;
}

export interface CreatePendingRequest {
  /**
   * Idempotency key of the rotation (AWS's ClientRequestToken): a retried call with the
   * same id must not create a second version.
   */
  rotationId: string | null;
  /** The current version, or null when the secret gets its first version. */
  current: VersionRef | null;
  /** A value an operator supplied; without it the adapter generates one from the secret's settings. */
  value?: SecretData;
}

export interface PendingVersion extends VersionRef {
  /** The new value, so that the broker can fingerprint it; never stored by the broker in clear. */
  data: SecretData;
}

/** A rollback that could not put the current value back upstream, because the upstream keeps no earlier value. */
export interface UnrestoredRollback {
  /** Explanation for the rotation's record: the value that stays in use upstream, and the operator's next step. */
  reason: string;
}

/** An upstream's own rotation of a secret, as its configuration reports it. */
export interface UpstreamRotation {
  /** Whether the upstream rotates the secret itself. */
  enabled: boolean;
  /** The rotator, such as an AWS Lambda function ARN, or null without one. */
  rotator: string | null;
  /** The upstream's schedule, such as AWS's `rate(30 days)` or `cron(0 4 ? * SUN *)`. */
  schedule: string | null;
  /** Length of each rotation window, such as AWS's `3h`. */
  window: string | null;
  lastRotatedAt: Date | null;
  nextRotationAt: Date | null;
}

/**
 * One upstream. Static secrets use `issue` with the current version and the four
 * rotation steps; dynamic secrets use `issue`, `renew` and `revoke`.
 */
export interface SecretAdapter {
  /** The name secrets use in their `adapter` field. */
  readonly name: string;
  /** The secret kinds this adapter serves. */
  readonly kinds: readonly SecretKind[];

  /**
   * Validates and normalizes a secret's settings when the secret is created or updated.
   * Throws `InvalidAdapterSettings` naming each bad setting. Never connects upstream.
   */
  parseSettings(kind: SecretKind, settings: unknown): Record<string, unknown>;

  /** Hands out a credential: the current value of a static secret, or a new dynamic credential. */
  issue(call: AdapterCall, request: IssueRequest): Promise<IssuedCredential>;
  /** Moves a dynamic credential's upstream expiry to `expiresAt`; reports an earlier expiry when the upstream granted less. */
  renew(call: AdapterCall, lease: UpstreamLease, expiresAt: Date): Promise<RenewedCredential | void>;
  /** Ends a dynamic credential upstream. A credential that is already gone counts as revoked. */
  revoke(call: AdapterCall, lease: UpstreamLease): Promise<void>;
  /**
   * Ends every upstream credential of a dynamic secret with one request, when the
   * secret's settings declare that only the broker issues credentials from that
   * upstream, so that none of them belongs to another client. Returns null, without
   * contacting the upstream, when the settings do not declare it; the broker then
   * revokes lease by lease. The broker calls it only when it revokes every live lease of
   * the secret.
   */
  revokeAll?(call: AdapterCall): Promise<RevokedAll | null>;

  /** Rotation step 1: creates the pending version (generated, or `request.value`), not yet in use. */
  createPending(call: AdapterCall, request: CreatePendingRequest): Promise<PendingVersion>;
  /** Rotation step 2: makes the upstream system accept the pending value (e.g. ALTER ROLE ... PASSWORD). */
  setPending(call: AdapterCall, pending: VersionRef): Promise<void>;
  /** Rotation step 3: proves the pending value works (reads it back, logs in with it). */
  testPending(call: AdapterCall, pending: VersionRef): Promise<void>;
  /** Rotation step 4: promotes the pending version upstream, where the upstream has stages. */
  finishPending(call: AdapterCall, pending: VersionRef, previous: VersionRef | null): Promise<void>;
  /**
   * Rollback: discards a pending version upstream where the upstream allows it, and
   * puts `current` back where `setPending` already replaced it (e.g. the old password).
   * Returns an `UnrestoredRollback` when the upstream cannot go back, so that the
   * rotation's record states that the pending value stays in use.
   */
  discardPending(call: AdapterCall, pending: VersionRef, current: VersionRef | null): Promise<UnrestoredRollback | void>;

  /**
   * Reads the upstream's current version of a static secret, with its value, so that the
   * broker can record it as current after someone else changed the upstream (a re-sync).
   * For upstreams that number their own versions (a Vault KV secret or static role).
   */
  readLatest?(call: AdapterCall): Promise<PendingVersion>;

  /**
   * Checks, when a secret is created, that the upstream serves its settings: that it is
   * reachable, accepts the broker's credentials and has the role or path they name. For
   * secrets whose creation reads nothing upstream otherwise (dynamic secrets). Throws
   * `InvalidAdapterSettings` naming a setting the upstream does not know.
   */
  verifyUpstream?(call: AdapterCall): Promise<void>;

  /**
   * Ends what still works of `retired`, an older version, after the finish step, when the
   * rotation revokes the older versions' leases (`old_leases: "revoke"`, or a compromise).
   * Adapters whose set step already replaced the only credential leave it out. It must be
   * safe to repeat, because a failed finish step runs again, and it must leave the
   * credential of the current version working.
   */
  retireVersion?(call: AdapterCall, retired: VersionRef): Promise<void>;

  /**
   * Reads the upstream's own rotation configuration of a secret, for adapters whose
   * upstream can rotate secrets itself. A secret the upstream rotates is not rotated by
   * the broker, so that it is not rotated twice.
   */
  describeRotation?(call: AdapterCall): Promise<UpstreamRotation>;

  /**
   * Names the upstream secret that a secret's settings point at, such as a Vault KV path,
   * an AWS secret or a Vault database role. The broker refuses a second static secret for
   * it, because two would each record their own versions of one upstream value and drift
   * apart. A dynamic secret's upstream may be shared, unless `claimsUpstream` returns
   * true for one of the secrets on it. A PATCH may not change it. Returns null when the settings name
   * no such secret. Adapters that keep the value themselves leave it out.
   */
  upstreamKey?(settings: Record<string, unknown>): string | null;

  /**
   * Tells whether a dynamic secret's settings claim its upstream for this secret alone,
   * such as a Vault role whose leases the broker revokes by prefix. The broker then
   * refuses any other dynamic secret on the same `upstreamKey`.
   */
  claimsUpstream?(settings: Record<string, unknown>): boolean;

  /**
   * Returns the settings with their reference to the upstream secret in its canonical
   * form, such as an AWS secret name replaced by the secret's ARN, so that `upstreamKey`
   * recognises one upstream secret however it was named. Called when a secret is
   * created, before the duplicate check; it may reach the upstream.
   */
  resolveSettings?(call: AdapterCall): Promise<Record<string, unknown>>;

  /** Releases connections and timers; called once at broker shutdown. */
  close(): Promise<void>;
}
