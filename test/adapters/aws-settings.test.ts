import { describe, expect, it } from "vitest";
import { AwsSecretsManagerAdapter } from "../../adapters/aws-secrets-manager/aws-adapter.js";
import { InvalidAdapterSettings } from "../../adapters/errors.js";

const adapter = new AwsSecretsManagerAdapter({ credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "test" } });
const ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/orders/db-AbC123";

function parseError(settings: unknown, kind: "static" | "dynamic" = "static"): InvalidAdapterSettings {
  try {
    adapter.parseSettings(kind, settings);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidAdapterSettings);
    return error as InvalidAdapterSettings;
  }
  throw new Error("parseSettings accepted invalid settings");
}

const database = {
  connection: { host: "127.0.0.1", database: "orders", username: "broker_admin", password_secret: "db/orders-admin" },
  role: { name: "orders_app" },
};

describe("aws-secrets-manager adapter settings", () => {
  it("defaults filled in for a name", () => {
    expect(adapter.parseSettings("static", { secret_id: "prod/orders/api-key", region: "eu-west-1" })).toEqual({
      secret_id: "prod/orders/api-key",
      region: "eu-west-1",
      version_stage: "AWSCURRENT",
      timeouts: { connect_ms: 3000, request_ms: 5000 },
      retry: { mode: "standard", max_attempts: 3 },
    });
  });

  it("pinned version_id without a stage, and the broker's own VersionIds accepted", () => {
    const pinned = `secrets-broker-rot_${"0a".repeat(12)}`;

    const settings = adapter.parseSettings("static", { secret_id: "prod/orders/api-key", version_id: pinned });

    expect(settings).toMatchObject({ version_id: pinned });
    expect(settings).not.toHaveProperty("version_stage");
    expect(adapter.parseSettings("static", settings)).toEqual(settings);
  });

  it("region taken from an ARN", () => {
    const settings = adapter.parseSettings("static", { secret_id: ARN }) as { region: string };

    expect(settings.region).toBe("eu-west-1");
  });

  it("database settings get postgres defaults", () => {
    const settings = adapter.parseSettings("static", { secret_id: "prod/orders/db", database }) as { database: { connection: Record<string, unknown> } };

    expect(settings.database.connection).toMatchObject({ port: 5432, password_field: "password", ssl: "disable" });
  });

  it("alternating_users gets clone_username <role>_clone", () => {
    const settings = adapter.parseSettings("static", { secret_id: "prod/orders/db", database, rotation_strategy: "alternating_users" });

    expect(settings).toMatchObject({ rotation_strategy: "alternating_users", clone_username: "orders_app_clone" });
    expect(adapter.parseSettings("static", settings)).toEqual(settings);
  });

  it("single_user leaves no strategy settings", () => {
    const settings = adapter.parseSettings("static", { secret_id: "prod/orders/db", database, rotation_strategy: "single_user" });

    expect(settings).not.toHaveProperty("rotation_strategy");
    expect(settings).not.toHaveProperty("clone_username");
  });

  it.each([
    ["missing secret_id", {}, ["secret_id"]],
    ["secret_id with a space", { secret_id: "prod orders" }, ["secret_id"]],
    ["secret_id too long", { secret_id: "a".repeat(513) }, ["secret_id"]],
    ["malformed ARN", { secret_id: "arn:aws:secretsmanager:eu-west-1:12:secret:x" }, ["secret_id"]],
    ["region not a region", { secret_id: "x", region: "Europe" }, ["region"]],
    ["region differs from the ARN", { secret_id: ARN, region: "us-east-1" }, ["region"]],
    ["endpoint not a URL", { secret_id: "x", endpoint: "localhost:4566" }, ["endpoint"]],
    ["endpoint with another scheme", { secret_id: "x", endpoint: "ftp://127.0.0.1/" }, ["endpoint"]],
    ["version_id too short", { secret_id: "x", version_id: "abc" }, ["version_id"]],
    ["version_id and version_stage", { secret_id: "x", version_id: "a".repeat(32), version_stage: "AWSPREVIOUS" }, ["version_id"]],
    ["version_stage empty", { secret_id: "x", version_stage: "" }, ["version_stage"]],
    ["connect timeout too small", { secret_id: "x", timeouts: { connect_ms: 10 } }, ["timeouts.connect_ms"]],
    ["request timeout not a number", { secret_id: "x", timeouts: { request_ms: "5s" } }, ["timeouts.request_ms"]],
    ["unknown timeout", { secret_id: "x", timeouts: { read_ms: 5 } }, ["timeouts.read_ms"]],
    ["retry mode legacy", { secret_id: "x", retry: { mode: "legacy" } }, ["retry.mode"]],
    ["max attempts zero", { secret_id: "x", retry: { max_attempts: 0 } }, ["retry.max_attempts"]],
    ["max attempts too many", { secret_id: "x", retry: { max_attempts: 11 } }, ["retry.max_attempts"]],
    ["unknown setting", { secret_id: "x", access_key: "AKID" }, ["access_key"]],
    ["database without role", { secret_id: "x", database: { connection: database.connection } }, ["database.role"]],
    ["database with a literal password", { secret_id: "x", database: { ...database, connection: { ...database.connection, password: "pw" } } }, ["database.connection.password"]],
    ["settings not an object", "prod/orders", ["settings"]],
    ["unknown rotation_strategy", { secret_id: "x", database, rotation_strategy: "two_users" }, ["rotation_strategy"]],
    ["rotation_strategy without database", { secret_id: "x", rotation_strategy: "alternating_users" }, ["rotation_strategy"]],
    ["clone_username without alternating_users", { secret_id: "x", database, clone_username: "orders_app_clone" }, ["clone_username"]],
    ["clone_username not a role name", { secret_id: "x", database, rotation_strategy: "alternating_users", clone_username: "orders-app" }, ["clone_username"]],
    ["clone_username equal to role.name", { secret_id: "x", database, rotation_strategy: "alternating_users", clone_username: "orders_app" }, ["clone_username"]],
    ["clone_username of a dynamic role", { secret_id: "x", database, rotation_strategy: "alternating_users", clone_username: `sb_dyn_${"0".repeat(16)}` }, ["clone_username"]],
    ["default clone name too long", { secret_id: "x", database: { ...database, role: { name: "r".repeat(60) } }, rotation_strategy: "alternating_users" }, ["clone_username"]],
  ])("%s rejected", (_case, settings, names) => {
    const error = parseError(settings);

    expect(error.code).toBe("invalid_settings");
    expect(error.invalidSettings.map((entry) => entry.name)).toEqual(names);
  });

  it("every bad setting reported at once", () => {
    const error = parseError({ secret_id: "bad id", region: "x", database: { connection: {} } });

    expect(error.invalidSettings.map((entry) => entry.name)).toEqual(expect.arrayContaining(["secret_id", "region", "database.role", "database.connection.host"]));
  });

  it("dynamic kind rejected", () => {
    expect(parseError({ secret_id: "x" }, "dynamic").invalidSettings.map((entry) => entry.name)).toEqual(["kind"]);
  });
});
