import { describe, expect, it } from "vitest";
import { InvalidAdapterSettings } from "../../adapters/errors.js";
import { parseVaultSettings } from "../../adapters/vault/vault-settings.js";

const CONNECTION = { address: "https://vault.example.com:8200" };
const APPROLE = { method: "approle", role_id: "broker-role", secret_id_secret: "vault/broker-approle" };
const KV = { mount: "secret", path: "prod/payments/api-key" };
const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

function problems(kind: "static" | "dynamic", settings: unknown): { name: string; reason: string }[] {
  try {
    parseVaultSettings(kind, settings);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidAdapterSettings);
    return (error as InvalidAdapterSettings).invalidSettings;
  }
  throw new Error("settings were accepted");
}

describe("vault settings", () => {
  it("fills in defaults", () => {
    const parsed = parseVaultSettings("static", { connection: { ...CONNECTION, namespace: "team-a/" }, auth: APPROLE, kv: { mount: "/secret/", path: "prod/api/" } });

    expect(parsed).toEqual({
      connection: { address: "https://vault.example.com:8200", namespace: "team-a", timeout_seconds: 10 },
      auth: { ...APPROLE, mount: "approle", secret_id_field: "secret_id" },
      kv: { mount: "secret", path: "prod/api" },
    });
  });

  it("accepts a dynamic database role", () => {
    const parsed = parseVaultSettings("dynamic", { connection: CONNECTION, auth: { method: "token", token_secret: "vault/token" }, database: { role: "readonly" } });

    expect(parsed.database).toEqual({ mount: "database", role: "readonly", dedicated_role: false });
    expect(parsed.auth).toEqual({ method: "token", token_secret: "vault/token", token_field: "token" });
  });

  const rejected: { case: string; kind: "static" | "dynamic"; settings: unknown; name: string; reason: RegExp }[] = [
    { case: "no settings", kind: "static", settings: undefined, name: "settings", reason: /is required/ },
    { case: "no address", kind: "static", settings: { connection: {}, auth: APPROLE, kv: KV }, name: "connection.address", reason: /is required/ },
    { case: "not a URL", kind: "static", settings: { connection: { address: "vault:8200" }, auth: APPROLE, kv: KV }, name: "connection.address", reason: /URL of the Vault server|https/ },
    { case: "plain http off loopback", kind: "static", settings: { connection: { address: "http://vault.example.com" }, auth: APPROLE, kv: KV }, name: "connection.address", reason: /https:\/\/ unless/ },
    { case: "address with path", kind: "static", settings: { connection: { address: "https://vault.example.com/v1" }, auth: APPROLE, kv: KV }, name: "connection.address", reason: /without credentials, path/ },
    { case: "address with user", kind: "static", settings: { connection: { address: "https://u:p@vault.example.com" }, auth: APPROLE, kv: KV }, name: "connection.address", reason: /without credentials/ },
    { case: "bad namespace", kind: "static", settings: { connection: { ...CONNECTION, namespace: "../x" }, auth: APPROLE, kv: KV }, name: "connection.namespace", reason: /namespace path/ },
    { case: "ca not PEM", kind: "static", settings: { connection: { ...CONNECTION, ca: "abc" }, auth: APPROLE, kv: KV }, name: "connection.ca", reason: /PEM/ },
    { case: "ca with http", kind: "static", settings: { connection: { address: "http://127.0.0.1:8200", ca: PEM }, auth: APPROLE, kv: KV }, name: "connection.ca", reason: /only to an https/ },
    { case: "timeout zero", kind: "static", settings: { connection: { ...CONNECTION, timeout_seconds: 0 }, auth: APPROLE, kv: KV }, name: "connection.timeout_seconds", reason: /from 1 to 300/ },
    { case: "timeout text", kind: "static", settings: { connection: { ...CONNECTION, timeout_seconds: "5" }, auth: APPROLE, kv: KV }, name: "connection.timeout_seconds", reason: /whole number/ },
    { case: "no auth", kind: "static", settings: { connection: CONNECTION, kv: KV }, name: "auth", reason: /is required/ },
    { case: "unknown method", kind: "static", settings: { connection: CONNECTION, auth: { method: "userpass" }, kv: KV }, name: "auth.method", reason: /token or approle/ },
    { case: "literal token", kind: "static", settings: { connection: CONNECTION, auth: { method: "token", token_secret: "vault/t", token: "hvs.x" }, kv: KV }, name: "auth.token", reason: /literal credential is not accepted/ },
    { case: "literal secret_id", kind: "static", settings: { connection: CONNECTION, auth: { ...APPROLE, secret_id: "x" }, kv: KV }, name: "auth.secret_id", reason: /literal credential/ },
    { case: "bad role_id", kind: "static", settings: { connection: CONNECTION, auth: { ...APPROLE, role_id: "a b" }, kv: KV }, name: "auth.role_id", reason: /role_id/ },
    { case: "bad secret name", kind: "static", settings: { connection: CONNECTION, auth: { ...APPROLE, secret_id_secret: "/x" }, kv: KV }, name: "auth.secret_id_secret", reason: /local secret/ },
    { case: "kv path with data/", kind: "static", settings: { connection: CONNECTION, auth: APPROLE, kv: { mount: "secret", path: "data/prod/x" } }, name: "kv.path", reason: /without the KV v2 API segment/ },
    { case: "kv path with ..", kind: "static", settings: { connection: CONNECTION, auth: APPROLE, kv: { mount: "secret", path: "prod/../x" } }, name: "kv.path", reason: /path of the secret/ },
    { case: "kv without mount", kind: "static", settings: { connection: CONNECTION, auth: APPROLE, kv: { path: "x" } }, name: "kv.mount", reason: /is required/ },
    { case: "neither kv nor static_role", kind: "static", settings: { connection: CONNECTION, auth: APPROLE }, name: "kv", reason: /exactly one of kv/ },
    { case: "both kv and static_role", kind: "static", settings: { connection: CONNECTION, auth: APPROLE, kv: KV, static_role: { name: "r" } }, name: "static_role", reason: /exactly one of kv/ },
    { case: "database on static", kind: "static", settings: { connection: CONNECTION, auth: APPROLE, kv: KV, database: { role: "r" } }, name: "database", reason: /only to dynamic/ },
    { case: "kv on dynamic", kind: "dynamic", settings: { connection: CONNECTION, auth: APPROLE, kv: KV, database: { role: "r" } }, name: "kv", reason: /only to static/ },
    { case: "dynamic without role", kind: "dynamic", settings: { connection: CONNECTION, auth: APPROLE, database: {} }, name: "database.role", reason: /is required/ },
    { case: "bad role name", kind: "dynamic", settings: { connection: CONNECTION, auth: APPROLE, database: { role: "a/b" } }, name: "database.role", reason: /name of a database role/ },
    { case: "dedicated_role text", kind: "dynamic", settings: { connection: CONNECTION, auth: APPROLE, database: { role: "r", dedicated_role: "yes" } }, name: "database.dedicated_role", reason: /must be true when only the broker/ },
    { case: "unknown setting", kind: "dynamic", settings: { connection: { ...CONNECTION, retries: 3 }, auth: APPROLE, database: { role: "r" } }, name: "connection.retries", reason: /unknown setting/ },
  ];

  it.each(rejected)("rejects $case", ({ kind, settings, name, reason }) => {
    const found = problems(kind, settings);
    const entry = found.find((problem) => problem.name === name);

    expect(entry, JSON.stringify(found)).toBeDefined();
    expect(entry!.reason).toMatch(reason);
  });

  it("rejects an unknown kind", () => {
    expect(problems("other" as "static", {})).toEqual([{ name: "kind", reason: expect.stringMatching(/must be dynamic or static/) }]);
  });
});
