import { generateKeyPairSync } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createApplication,
  expectProblem,
  FUTURE_EXPIRY,
  generateJwkPair,
  invalidParamNames,
  publicJwk,
  REGISTER_TABLES,
  registerSnapshot,
  rowCount,
  uniqueName,
} from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";

const SERVICE_ACCOUNTS_PER_ESTATE = 10;
/** Index of the entry that the invalid-estate cases spoil, late in the list after eight valid ones. */
const LATE = 8;

type Entry = Record<string, unknown>;

/** Inline key of the second issuer, generated once because RSA key generation is slow. */
const ISSUER_KEY = publicJwk("rsa-2048");

interface Estate {
  applications: Entry[];
  trusted_issuers: Entry[];
  service_accounts: Entry[];
}

/**
 * Builds a valid estate with fresh names: three applications, an issuer by JWKS URI and one
 * with inline keys, and ten service accounts, one of them under an application already in the register.
 */
function buildEstate(existingApplication: string): Estate {
  const applications = ["billing", "orders", "warehouse"].map((name, index) => ({
    name: uniqueName(name),
    technical_owner: `team-${name}@example.com`,
    criticality: ["low", "high", "critical"][index],
    regulated: index === 2,
  }));
  const kubernetes = `https://${uniqueName("k8s")}.example.com`;
  const github = `https://${uniqueName("actions")}.example.com`;
  const serviceAccounts: Entry[] = Array.from({ length: SERVICE_ACCOUNTS_PER_ESTATE }, (_, index) => ({
    name: uniqueName("svc"),
    application: applications[index % applications.length]!.name,
    technical_owner: "ops@example.com",
    expires_at: FUTURE_EXPIRY,
    allowed_scopes: ["orders:read"],
    keys: index % 3 === 0 ? [publicJwk("ec-p256")] : [],
    federated_subjects: index % 4 === 1 ? [{ issuer: kubernetes, subject: `system:serviceaccount:ns:svc-${index}` }] : [],
  }));
  serviceAccounts[5] = {
    ...serviceAccounts[5],
    kind: "supplier",
    supplier: { name: "Acme GmbH", contract_ref: "CTR-9", approved_by: "ciso@example.com", approved_at: "2026-05-01T00:00:00Z" },
  };
  serviceAccounts[9] = { ...serviceAccounts[9], application: existingApplication };
  return {
    applications,
    trusted_issuers: [
      { issuer: kubernetes, jwks_uri: `${kubernetes}/openid/v1/jwks`, audiences: ["secrets-broker"] },
      { issuer: github, jwks: { keys: [ISSUER_KEY] } },
    ],
    service_accounts: serviceAccounts,
  };
}

describe("estate import", () => {
  let broker: TestBroker;
  let existingApplication: string;

  beforeAll(async () => {
    broker = await startTestBroker();
    existingApplication = (await createApplication(broker)).name;
  });

  afterAll(async () => {
    await broker.close();
  });

  /** Reads the register and counts the audit events, to show that a request changed neither. */
  async function storedState() {
    return { register: await registerSnapshot(broker), auditEvents: await rowCount(broker, "audit_events") };
  }

  async function rowCounts(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const table of REGISTER_TABLES) {
      counts[table] = await rowCount(broker, table);
    }
    return counts;
  }

  it("valid estate creates everything", async () => {
    const estate = buildEstate(existingApplication);
    const before = await rowCounts();

    const response = await broker.request("POST", "/v1/import", { body: estate });
    const after = await rowCounts();

    expect(response.status, response.text).toBe(200);
    expect(response.json.dry_run).toBe(false);
    expect(response.json.applications.map((entry: Entry) => entry["name"])).toEqual(estate.applications.map((entry) => entry["name"]));
    expect(response.json.service_accounts.map((entry: Entry) => entry["name"])).toEqual(estate.service_accounts.map((entry) => entry["name"]));
    expect(after["applications"]! - before["applications"]!).toBe(3);
    expect(after["trusted_issuers"]! - before["trusted_issuers"]!).toBe(2);
    expect(after["service_accounts"]! - before["service_accounts"]!).toBe(SERVICE_ACCOUNTS_PER_ESTATE);
    expect(after["workload_keys"]! - before["workload_keys"]!).toBe(4);
    expect(after["federated_subjects"]! - before["federated_subjects"]!).toBe(3);
  });

  it("imported accounts read back", async () => {
    const estate = buildEstate(existingApplication);

    const response = await broker.request("POST", "/v1/import", { body: estate });
    const supplier = await broker.request("GET", `/v1/service-accounts/${response.json.service_accounts[5].id}`);
    const underExisting = await broker.request("GET", `/v1/service-accounts/${response.json.service_accounts[9].id}`);
    const keys = await broker.request("GET", `/v1/service-accounts/${response.json.service_accounts[0].id}/keys`);
    const subjects = await broker.request("GET", `/v1/service-accounts/${response.json.service_accounts[1].id}/federated-subjects`);
    const application = await broker.request("GET", `/v1/applications/${response.json.applications[2].id}`);

    expect(supplier.json.kind).toBe("supplier");
    expect(supplier.json.supplier.contract_ref).toBe("CTR-9");
    expect(underExisting.json.application_id).not.toBe(response.json.applications[0].id);
    expect(keys.json.items).toHaveLength(1);
    expect(subjects.json.items[0].issuer).toBe(estate.trusted_issuers[0]!["issuer"]);
    expect(application.json.criticality).toBe("critical");
    expect(application.json.regulated).toBe(true);
  });

  it.each([
    { case: "expires_at in past", change: { expires_at: "2026-01-01T00:00:00Z" }, field: "expires_at" },
    { case: "expires_at missing", change: { expires_at: undefined }, field: "expires_at" },
    { case: "technical_owner missing", change: { technical_owner: undefined }, field: "technical_owner" },
    { case: "kind unknown", change: { kind: "robot" }, field: "kind" },
    { case: "supplier kind without supplier", change: { kind: "supplier" }, field: "supplier" },
    { case: "unknown application", change: { application: "no-such-application" }, field: "application" },
    { case: "duplicate scopes", change: { allowed_scopes: ["a", "a"] }, field: "allowed_scopes" },
    { case: "last_reviewed_at in future", change: { last_reviewed_at: "2026-12-01T00:00:00Z" }, field: "last_reviewed_at" },
    { case: "unknown field", change: { owner: "ops@example.com" }, field: "owner" },
    { case: "private key", change: { keys: [generateJwkPair("ec-p256").privateJwk] }, field: "keys[0]" },
    { case: "RSA 1024 key", change: { keys: [generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ format: "jwk" })] }, field: "keys[0].n" },
    { case: "second key HMAC", change: { keys: [publicJwk(), { kty: "oct", k: "c2VjcmV0" }] }, field: "keys[1]" },
    {
      case: "subject of untrusted issuer",
      change: { federated_subjects: [{ issuer: "https://untrusted.example.com", subject: "s" }] },
      field: "federated_subjects[0].issuer",
    },
  ])("rejects $case late in list", async ({ change, field }) => {
    const estate = buildEstate(existingApplication);
    estate.service_accounts[LATE] = { ...estate.service_accounts[LATE], ...change };
    const before = await storedState();

    const response = await broker.request("POST", "/v1/import", { body: estate });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual([`service_accounts[${LATE}].${field}`]);
    expect(await storedState()).toEqual(before);
  });

  it.each([
    { case: "application name", section: "applications", index: 2, change: { name: "Warehouse" }, field: "name" },
    { case: "issuer jwks_uri over http", section: "trusted_issuers", index: 1, change: { jwks: undefined, jwks_uri: "http://github.example.com/jwks" }, field: "jwks_uri" },
    { case: "issuer private key", section: "trusted_issuers", index: 1, change: { jwks: { keys: [generateJwkPair("ed25519").privateJwk] } }, field: "jwks.keys[0]" },
  ] as const)("rejects invalid $case", async ({ section, index, change, field }) => {
    const estate = buildEstate(existingApplication);
    estate[section][index] = { ...estate[section][index], ...change };
    const before = await storedState();

    const response = await broker.request("POST", "/v1/import", { body: estate });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual([`${section}[${index}].${field}`]);
    expect(await storedState()).toEqual(before);
  });

  it("rejects duplicate name late in list with 409", async () => {
    const estate = buildEstate(existingApplication);
    estate.service_accounts[9] = { ...estate.service_accounts[9], name: estate.service_accounts[0]!["name"] };
    const before = await storedState();

    const response = await broker.request("POST", "/v1/import", { body: estate });

    expectProblem(response, 409, "conflict");
    expect(response.json.detail).toMatch(/^service_accounts\[9\]: /);
    expect(await storedState()).toEqual(before);
  });

  it("rejects same estate twice", async () => {
    const estate = buildEstate(existingApplication);
    await broker.request("POST", "/v1/import", { body: estate });
    const before = await storedState();

    const response = await broker.request("POST", "/v1/import", { body: estate });

    expectProblem(response, 409, "conflict");
    expect(await storedState()).toEqual(before);
  });

  it("dry run creates nothing", async () => {
    const estate = buildEstate(existingApplication);
    const before = await storedState();

    const response = await broker.request("POST", "/v1/import?dry_run=true", { body: estate });

    expect(response.status, response.text).toBe(200);
    expect(response.json.dry_run).toBe(true);
    expect(response.json.service_accounts).toHaveLength(SERVICE_ACCOUNTS_PER_ESTATE);
    expect(response.json.trusted_issuers).toHaveLength(2);
    expect(await storedState()).toEqual(before);
  });

  it("dry run reports invalid entry", async () => {
    const estate = buildEstate(existingApplication);
    estate.service_accounts[LATE] = { ...estate.service_accounts[LATE], expires_at: "2020-01-01T00:00:00Z" };
    const before = await storedState();

    const response = await broker.request("POST", "/v1/import?dry_run=true", { body: estate });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual([`service_accounts[${LATE}].expires_at`]);
    expect(await storedState()).toEqual(before);
  });

  it("dry run then import creates same names", async () => {
    const estate = buildEstate(existingApplication);

    const checked = await broker.request("POST", "/v1/import?dry_run=true", { body: estate });
    const imported = await broker.request("POST", "/v1/import?dry_run=false", { body: estate });

    expect(imported.status).toBe(200);
    expect(imported.json.dry_run).toBe(false);
    expect(imported.json.service_accounts.map((entry: Entry) => entry["name"])).toEqual(
      checked.json.service_accounts.map((entry: Entry) => entry["name"]),
    );
  });

  it("rejects dry_run value other than true or false", async () => {
    const response = await broker.request("POST", "/v1/import?dry_run=yes", { body: buildEstate(existingApplication) });

    expectProblem(response, 400, "validation_failed");
    expect(invalidParamNames(response)).toEqual(["dry_run"]);
  });

  it("empty estate imports nothing", async () => {
    const before = await rowCounts();

    const response = await broker.request("POST", "/v1/import", { body: {} });

    expect(response.status).toBe(200);
    expect(response.json.service_accounts).toEqual([]);
    expect(await rowCounts()).toEqual(before);
  });
});
