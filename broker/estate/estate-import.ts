import { eq } from "drizzle-orm";
import type { RecordAudit } from "../audit/audit-writer.js";
import type { Clock } from "../config/clock.js";
import type { Tx } from "../db/database.js";
import { applications, serviceAccounts } from "../db/schema.js";
import { BrokerError, Conflict, ValidationFailed } from "../errors.js";
import { createGrant } from "../grants/grants-service.js";
import { createApplication } from "../register/applications-service.js";
import { createServiceAccount } from "../register/service-accounts-service.js";
import { addFederatedSubject, addWorkloadKey, createTrustedIssuer } from "../register/trust-service.js";
import type { EstateImportResultView, EstateInput } from "./estate-schema.js";

/** Raised to roll back a dry run after every entry was checked and written. */
class DryRunRollback extends Error {}

/**
 * Creates every entry of the estate in the caller's transaction. The first invalid
 * entry aborts the whole import, with field names prefixed by the entry's path
 * (`service_accounts[3].expires_at`), so that nothing is half imported.
 */
export async function importEstate(
  tx: Tx,
  clock: Clock,
  record: RecordAudit,
  estate: EstateInput,
  actor: string,
): Promise<EstateImportResultView> {
  const result: EstateImportResultView = { dry_run: false, applications: [], trusted_issuers: [], service_accounts: [], grants: [] };
  const applicationIds = new Map<string, string>();

  for (const [index, input] of estate.applications.entries()) {
    const created = await atEntry(`applications[${index}]`, () => createApplication(tx, clock, record, input));
    applicationIds.set(created.name, created.id);
    result.applications.push({ name: created.name, id: created.id });
  }

  for (const [index, input] of estate.trusted_issuers.entries()) {
    const created = await atEntry(`trusted_issuers[${index}]`, () => createTrustedIssuer(tx, clock, record, input));
    result.trusted_issuers.push({ issuer: created.issuer, id: created.id });
  }

  for (const [index, entry] of estate.service_accounts.entries()) {
    const path = `service_accounts[${index}]`;
    const { application, keys, federated_subjects: subjects, ...account } = entry;
    const applicationId = applicationIds.get(application) ?? (await findApplicationId(tx, application));
    if (!applicationId) {
      throw new ValidationFailed([{ name: `${path}.application`, reason: `no application named '${application}' in the file or the register` }]);
    }
    const created = await atEntry(path, () =>
      createServiceAccount(tx, clock, record, { ...account, application_id: applicationId }),
    );
    for (const [keyIndex, jwk] of keys.entries()) {
      await atEntry(`${path}.keys[${keyIndex}]`, () => addWorkloadKey(tx, clock, record, created.id, jwk), "jwk");
    }
    for (const [subjectIndex, subject] of subjects.entries()) {
      await atEntry(`${path}.federated_subjects[${subjectIndex}]`, () => addFederatedSubject(tx, clock, record, created.id, subject));
    }
    result.service_accounts.push({ name: created.name, id: created.id });
  }

  const accountIds = new Map(result.service_accounts.map((account) => [account.name, account.id]));
  for (const [index, entry] of estate.grants.entries()) {
    const path = `grants[${index}]`;
    const { service_account: accountName, ...grant } = entry;
    const accountId = accountIds.get(accountName) ?? (await findServiceAccountId(tx, accountName));
    if (!accountId) {
      throw new ValidationFailed([{ name: `${path}.service_account`, reason: `no service account named '${accountName}' in the file or the register` }]);
    }
    const created = await atEntry(path, () => createGrant(tx, clock.now(), record, { ...grant, service_account_id: accountId }, actor));
    result.grants.push({ service_account: accountName, id: created.id });
  }

  record({
    action: "estate.import",
    target: null,
    details: {
      applications: result.applications.length,
      trusted_issuers: result.trusted_issuers.length,
      service_accounts: result.service_accounts.length,
      grants: result.grants.length,
    },
  });
  return result;
}

/** Runs an import that is checked in full and then rolled back. */
export async function dryRunImport(
  transaction: (work: (tx: Tx, record: RecordAudit) => Promise<EstateImportResultView>) => Promise<EstateImportResultView>,
  clock: Clock,
  estate: EstateInput,
  actor: string,
): Promise<EstateImportResultView> {
  let checked: EstateImportResultView | undefined;
  try {
    await transaction(async (tx, record) => {
      checked = await importEstate(tx, clock, record, estate, actor);
      throw new DryRunRollback();
    });
  } catch (error) {
    if (!(error instanceof DryRunRollback)) {
      throw error;
    }
  }
  return { ...checked!, dry_run: true };
}

async function findApplicationId(tx: Tx, name: string): Promise<string | undefined> {
  const [row] = await tx.select({ id: applications.id }).from(applications).where(eq(applications.name, name));
  return row?.id;
}

async function findServiceAccountId(tx: Tx, name: string): Promise<string | undefined> {
  const [row] = await tx.select({ id: serviceAccounts.id }).from(serviceAccounts).where(eq(serviceAccounts.name, name));
  return row?.id;
}

/** Prefixes the field names of a validation error, or the message of another broker error, with the entry's path. */
async function atEntry<T>(path: string, work: () => Promise<T>, stripPrefix?: string): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ValidationFailed) {
      throw new ValidationFailed(
        error.invalidParams.map((param) => ({ name: `${path}.${stripField(param.name, stripPrefix)}`.replace(/\.$/, ""), reason: param.reason })),
      );
    }
    if (error instanceof Conflict) {
      throw new Conflict(`${path}: ${error.message}`);
    }
    if (error instanceof BrokerError) {
      throw new BrokerError(error.code, `${path}: ${error.message}`, error.invalidParams);
    }
    throw error;
  }
}

function stripField(name: string, prefix: string | undefined): string {
  if (!prefix) return name;
  if (name === prefix) return "";
  return name.startsWith(`${prefix}.`) ? name.slice(prefix.length + 1) : name;
}
