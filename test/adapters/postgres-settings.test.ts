import { describe, expect, it } from "vitest";
import { InvalidAdapterSettings } from "../../adapters/errors.js";
import { PostgresAdapter } from "../../adapters/postgres/postgres-adapter.js";

const adapter = new PostgresAdapter();

function validSettings() {
  return {
    connection: {
      host: "127.0.0.1",
      port: 5432,
      database: "orders",
      username: "broker_admin",
      password_secret: "db/orders-admin",
      password_field: "password",
      ssl: "disable",
    },
    role: { member_of: ["orders_readonly"], name_prefix: "orders", connection_limit: 5 },
  };
}

type Settings = ReturnType<typeof validSettings>;

function minimalConnection(host = "127.0.0.1") {
  return { host, database: "orders", username: "broker_admin", password_secret: "db/orders-admin" };
}

function parseError(settings: unknown): InvalidAdapterSettings {
  try {
    adapter.parseSettings("dynamic", settings);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidAdapterSettings);
    return error as InvalidAdapterSettings;
  }
  throw new Error("parseSettings accepted invalid settings");
}

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

describe("postgres adapter settings", () => {
  it("valid settings returned unchanged", () => {
    expect(adapter.parseSettings("dynamic", validSettings())).toEqual(validSettings());
  });

  it("defaults filled in", () => {
    const settings = adapter.parseSettings("dynamic", { connection: minimalConnection() });

    expect(settings).toEqual({
      connection: { ...minimalConnection(), port: 5432, password_field: "password", ssl: "disable" },
      role: { member_of: [] },
    });
  });

  it.each(["127.0.0.1", "127.10.0.3", "localhost", "LOCALHOST"])("loopback %s defaults to ssl disable", (host) => {
    const settings = adapter.parseSettings("dynamic", { connection: minimalConnection(host) }) as Settings;

    expect(settings.connection.ssl).toBe("disable");
  });

  it.each(["db.example.com", "10.0.0.5"])("remote %s defaults to ssl verify-full", (host) => {
    const settings = adapter.parseSettings("dynamic", { connection: minimalConnection(host) }) as Settings;

    expect(settings.connection.ssl).toBe("verify-full");
  });

  it("explicit ssl disable kept for remote host", () => {
    const settings = adapter.parseSettings("dynamic", { connection: { ...minimalConnection("db.example.com"), ssl: "disable" } }) as Settings;

    expect(settings.connection.ssl).toBe("disable");
  });

  it("verify-full accepts ca", () => {
    const settings = adapter.parseSettings("dynamic", {
      connection: { ...minimalConnection("db.example.com"), ssl: "verify-full", ca: PEM },
    }) as Settings & { connection: { ca: string } };

    expect(settings.connection.ca).toBe(PEM);
  });

  it("dynamic settings rejected for static kind", () => {
    let error: unknown;
    try {
      adapter.parseSettings("static", validSettings());
    } catch (caught) {
      error = caught;
    }

    expect(error).toBeInstanceOf(InvalidAdapterSettings);
    expect((error as InvalidAdapterSettings).invalidSettings.map((entry) => entry.name).sort()).toEqual(
      ["role.connection_limit", "role.member_of", "role.name", "role.name_prefix"].sort(),
    );
  });

  it("unknown kind rejected", () => {
    let error: unknown;
    try {
      adapter.parseSettings("rotating" as "static", validSettings());
    } catch (caught) {
      error = caught;
    }

    expect(error).toBeInstanceOf(InvalidAdapterSettings);
    expect((error as InvalidAdapterSettings).invalidSettings).toEqual([{ name: "kind", reason: expect.stringContaining("must be dynamic or static") }]);
  });

  it("errors carry the settings code", () => {
    const error = parseError({});

    expect(error.code).toBe("invalid_settings");
    expect(error.retryable).toBe(false);
  });

  const badSettings: [string, (settings: Settings) => unknown, string][] = [
    ["settings null", () => null, "settings"],
    ["settings array", () => [], "settings"],
    ["settings string", () => "postgres://broker_admin@db/orders", "settings"],
    ["connection missing", (s) => ({ role: s.role }), "connection"],
    ["connection not object", (s) => ({ ...s, connection: "db" }), "connection"],
    ["host missing", (s) => ({ ...s, connection: { ...s.connection, host: undefined } }), "connection.host"],
    ["host empty", (s) => ({ ...s, connection: { ...s.connection, host: "" } }), "connection.host"],
    ["host with port", (s) => ({ ...s, connection: { ...s.connection, host: "db.example.com:5432" } }), "connection.host"],
    ["host list", (s) => ({ ...s, connection: { ...s.connection, host: "db1,db2" } }), "connection.host"],
    ["host socket path", (s) => ({ ...s, connection: { ...s.connection, host: "/var/run/postgresql" } }), "connection.host"],
    ["host IPv6 literal", (s) => ({ ...s, connection: { ...s.connection, host: "::1" } }), "connection.host"],
    ["host URL", (s) => ({ ...s, connection: { ...s.connection, host: "postgres://db.example.com" } }), "connection.host"],
    ["host 254 characters", (s) => ({ ...s, connection: { ...s.connection, host: `${"a".repeat(250)}.com` } }), "connection.host"],
    ["password_secret 256 characters", (s) => ({ ...s, connection: { ...s.connection, password_secret: "s".repeat(256) } }), "connection.password_secret"],
    ["host number", (s) => ({ ...s, connection: { ...s.connection, host: 127001 } }), "connection.host"],
    ["port zero", (s) => ({ ...s, connection: { ...s.connection, port: 0 } }), "connection.port"],
    ["port too high", (s) => ({ ...s, connection: { ...s.connection, port: 65536 } }), "connection.port"],
    ["port fraction", (s) => ({ ...s, connection: { ...s.connection, port: 5432.5 } }), "connection.port"],
    ["port string", (s) => ({ ...s, connection: { ...s.connection, port: "5432" } }), "connection.port"],
    ["database missing", (s) => ({ ...s, connection: { ...s.connection, database: undefined } }), "connection.database"],
    ["database empty", (s) => ({ ...s, connection: { ...s.connection, database: "" } }), "connection.database"],
    ["database 64 bytes", (s) => ({ ...s, connection: { ...s.connection, database: "d".repeat(64) } }), "connection.database"],
    ["database multibyte over 63 bytes", (s) => ({ ...s, connection: { ...s.connection, database: "é".repeat(32) } }), "connection.database"],
    ["database with NUL", (s) => ({ ...s, connection: { ...s.connection, database: "or\u0000ders" } }), "connection.database"],
    ["username missing", (s) => ({ ...s, connection: { ...s.connection, username: undefined } }), "connection.username"],
    ["username with newline", (s) => ({ ...s, connection: { ...s.connection, username: "broker\nadmin" } }), "connection.username"],
    ["password_secret missing", (s) => ({ ...s, connection: { ...s.connection, password_secret: undefined } }), "connection.password_secret"],
    ["password_secret empty", (s) => ({ ...s, connection: { ...s.connection, password_secret: "" } }), "connection.password_secret"],
    ["password_secret parent path", (s) => ({ ...s, connection: { ...s.connection, password_secret: "../admin" } }), "connection.password_secret"],
    ["password_secret empty segment", (s) => ({ ...s, connection: { ...s.connection, password_secret: "db//admin" } }), "connection.password_secret"],
    ["password_secret space", (s) => ({ ...s, connection: { ...s.connection, password_secret: "db/orders admin" } }), "connection.password_secret"],
    ["password_field empty", (s) => ({ ...s, connection: { ...s.connection, password_field: "" } }), "connection.password_field"],
    ["password_field digit first", (s) => ({ ...s, connection: { ...s.connection, password_field: "1password" } }), "connection.password_field"],
    ["ssl prefer", (s) => ({ ...s, connection: { ...s.connection, ssl: "prefer" } }), "connection.ssl"],
    ["ssl boolean", (s) => ({ ...s, connection: { ...s.connection, ssl: true } }), "connection.ssl"],
    ["ca without verify-full", (s) => ({ ...s, connection: { ...s.connection, ssl: "require", ca: PEM } }), "connection.ca"],
    ["ca not PEM", (s) => ({ ...s, connection: { ...s.connection, ssl: "verify-full", ca: "not a certificate" } }), "connection.ca"],
    ["unknown connection setting", (s) => ({ ...s, connection: { ...s.connection, sslmode: "require" } }), "connection.sslmode"],
    ["unknown top-level setting", (s) => ({ ...s, options: "-c search_path=evil" }), "options"],
    ["role not object", (s) => ({ ...s, role: "orders_readonly" }), "role"],
    ["member_of string", (s) => ({ ...s, role: { ...s.role, member_of: "orders_readonly" } }), "role.member_of"],
    ["member_of with dash", (s) => ({ ...s, role: { ...s.role, member_of: ["orders-readonly"] } }), "role.member_of[0]"],
    ["member_of digit first", (s) => ({ ...s, role: { ...s.role, member_of: ["orders_readonly", "1readers"] } }), "role.member_of[1]"],
    ["member_of 64 characters", (s) => ({ ...s, role: { ...s.role, member_of: ["r".repeat(64)] } }), "role.member_of[0]"],
    ["member_of quote injection", (s) => ({ ...s, role: { ...s.role, member_of: ['x"; drop role postgres; --'] } }), "role.member_of[0]"],
    ["member_of empty name", (s) => ({ ...s, role: { ...s.role, member_of: [""] } }), "role.member_of[0]"],
    ["member_of number", (s) => ({ ...s, role: { ...s.role, member_of: [5] } }), "role.member_of[0]"],
    ["member_of duplicate", (s) => ({ ...s, role: { ...s.role, member_of: ["a", "b", "a"] } }), "role.member_of[2]"],
    ["member_of 21 roles", (s) => ({ ...s, role: { ...s.role, member_of: Array.from({ length: 21 }, (_, i) => `r${i}`) } }), "role.member_of"],
    ["name_prefix upper case", (s) => ({ ...s, role: { ...s.role, name_prefix: "Orders" } }), "role.name_prefix"],
    ["name_prefix empty", (s) => ({ ...s, role: { ...s.role, name_prefix: "" } }), "role.name_prefix"],
    ["name_prefix 17 characters", (s) => ({ ...s, role: { ...s.role, name_prefix: "o".repeat(17) } }), "role.name_prefix"],
    ["name_prefix digit first", (s) => ({ ...s, role: { ...s.role, name_prefix: "1orders" } }), "role.name_prefix"],
    ["name_prefix dash", (s) => ({ ...s, role: { ...s.role, name_prefix: "orders-ro" } }), "role.name_prefix"],
    ["connection_limit zero", (s) => ({ ...s, role: { ...s.role, connection_limit: 0 } }), "role.connection_limit"],
    ["connection_limit too high", (s) => ({ ...s, role: { ...s.role, connection_limit: 1001 } }), "role.connection_limit"],
    ["connection_limit fraction", (s) => ({ ...s, role: { ...s.role, connection_limit: 1.5 } }), "role.connection_limit"],
    ["connection_limit string", (s) => ({ ...s, role: { ...s.role, connection_limit: "5" } }), "role.connection_limit"],
    ["unknown role setting", (s) => ({ ...s, role: { ...s.role, superuser: true } }), "role.superuser"],
    ["static role.name", (s) => ({ ...s, role: { ...s.role, name: "orders_app" } }), "role.name"],
  ];

  it.each(badSettings)("rejects %s", (_label, mutate, field) => {
    const error = parseError(mutate(validSettings()));

    expect(error.invalidSettings.map((entry) => entry.name)).toEqual([field]);
    expect(error.invalidSettings[0]!.reason).not.toBe("");
    expect(error.message).toContain(`${field}: `);
  });

  it("missing field says it is required", () => {
    const error = parseError({ connection: { host: "127.0.0.1" } });

    expect(error.invalidSettings).toEqual([
      { name: "connection.database", reason: "is required; must be the name of a database" },
      { name: "connection.username", reason: "is required; must be the name of the admin role the broker logs in as" },
      {
        name: "connection.password_secret",
        reason: "is required; must be the name of a local secret that stores the admin password, such as db/orders-admin",
      },
    ]);
  });

  it("literal password points to password_secret", () => {
    const settings = validSettings();
    const error = parseError({ ...settings, connection: { ...settings.connection, password: "hunter2-admin" } });

    expect(error.invalidSettings).toEqual([
      {
        name: "connection.password",
        reason: "a literal password is not accepted; store the admin password in a local secret and name it in connection.password_secret",
      },
    ]);
    expect(error.message).not.toContain("hunter2-admin");
  });

  it("top-level password rejected", () => {
    const error = parseError({ ...validSettings(), password: "hunter2-admin" });

    expect(error.invalidSettings.map((entry) => entry.name)).toEqual(["password"]);
    expect(error.message).not.toContain("hunter2-admin");
  });

  it("every bad field reported", () => {
    const settings = validSettings();
    const error = parseError({
      connection: { ...settings.connection, host: "", port: 0 },
      role: { ...settings.role, member_of: ["ok", "not ok"], connection_limit: 0 },
    });

    expect(error.invalidSettings.map((entry) => entry.name).sort()).toEqual(
      ["connection.host", "connection.port", "role.connection_limit", "role.member_of[1]"].sort(),
    );
  });
});
