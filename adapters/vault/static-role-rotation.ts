import type { Logger } from "pino";
import type { AdapterCall, CreatePendingRequest, PendingVersion, UnrestoredRollback, VersionRef } from "../contract.js";
import { UpstreamConflict, UpstreamRejected } from "../errors.js";
import type { ValueSealer } from "../local/value-sealer.js";
import { readStaticRoleCredential, rotateStaticRole } from "./database-credentials.js";
import { requireSameAsCopy, sealCopy } from "./sealed-copy.js";
import type { PreparedVaultCall } from "./vault-sessions.js";
import type { VaultStaticSettings } from "./vault-settings.js";

type StaticRoleCall = PreparedVaultCall<VaultStaticSettings>;

/**
 * Rotation of a database static role: Vault makes and sets the password itself, so
 * createPending requests a rotation now and reads the new password back. The version is
 * Vault's last_vault_rotation time. A secret's first version is the current password.
 */
export class StaticRoleRotation {
  constructor(
    private readonly sealer: ValueSealer,
    private readonly logger: Pick<Logger, "warn"> | undefined,
  ) {}

  async createPending(call: AdapterCall, role: StaticRoleCall, request: CreatePendingRequest): Promise<PendingVersion> {
    if (request.value !== undefined) {
      throw new UpstreamRejected(`secret ${call.secret.name} is a Vault static role, whose passwords Vault makes; rotate it without a value`);
    }
    // A secret's first version is the password Vault has now; later versions need a rotation.
    if (request.current === null) {
      return this.readLatest(call, role);
    }
    await rotateStaticRole(role);
    const latest = await this.readLatest(call, role);
    if (latest.version === request.current.version) {
      throw new UpstreamRejected(`Vault reports no new rotation of ${role.location} (secret ${call.secret.name}) after rotate-role; check the static role in Vault`);
    }
    return latest;
  }

  /** Reads Vault's current password of the role, versioned by Vault's last_vault_rotation. */
  async readLatest(call: AdapterCall, role: StaticRoleCall): Promise<PendingVersion> {
    const { data, lastRotation } = await readStaticRoleCredential(role, call.secret.name);
    return { version: lastRotation, sealedValue: await sealCopy(this.sealer, call.secret, lastRotation, data), data };
  }

  /** Reads the static role back: Vault must still report the pending rotation and its password. */
  async testPending(call: AdapterCall, role: StaticRoleCall, pending: VersionRef): Promise<void> {
    const { data, lastRotation } = await readStaticRoleCredential(role, call.secret.name);
    if (lastRotation !== pending.version) {
      throw new UpstreamConflict(
        `${role.location} (secret ${call.secret.name}) was rotated again at ${lastRotation} after the pending rotation at ${pending.version}; rotate again`,
      );
    }
    await requireSameAsCopy(this.sealer, call.secret, pending, data, role.location);
  }

  /**
   * Vault keeps no earlier password of a static role, so a rollback cannot restore it:
   * the password Vault set in the rotation stays in use, as the returned reason states.
   */
  discardPending(call: AdapterCall, role: StaticRoleCall, pending: VersionRef): UnrestoredRollback {
    // NOTE: leases of the previous version carry a password that no longer works; revoke them or let them expire.
    this.logger?.warn(
      { secretId: call.secret.id, pendingVersion: pending.version },
      "a Vault static role cannot return to its previous password; the password Vault set in the rotation stays in use",
    );
    return {
      reason:
        `Vault keeps no earlier password of ${role.location}, so the previous password was not restored: the password Vault set at ${pending.version} ` +
        `(or a later one) stays in use and the previous version's password no longer works. Record Vault's password as current with ` +
        `\`secrets-broker secret resync ${call.secret.name}\`, or rotate again.`,
    };
  }
}
