import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { freePort } from "../support/broker-process.js";
import { ADMIN_PASSWORD_SECRET, createPostgresFixture, type PostgresFixture, TEST_POSTGRES_URL } from "../support/postgres-fixture.js";
import { activeLeases, expectAdmin, READ_SCOPE, registerWorkload, type SdkBroker, type SdkWorkload, startSdkBroker } from "../sdk/sdk-fixtures.js";

const APP_PATH = fileURLToPath(new URL("../../dist/examples/app/orders-app.js", import.meta.url));

/** The example service, started as a real process, and its output. */
interface RunningApp {
  address: string;
  child: ChildProcess;
  output(): string;
  orders(): Promise<{ status: number; body: any }>;
}

describe.skipIf(!TEST_POSTGRES_URL)("examples/app: a service on broker-issued PostgreSQL credentials", () => {
  let broker: SdkBroker;
  let pg: PostgresFixture;
  let workload: SdkWorkload;
  let keyFile: string;
  let dynamicSecretId: string;
  const apps: RunningApp[] = [];

  async function grantSecret(name: string, kind: "dynamic" | "static", settings: Record<string, unknown>, value?: Record<string, string>): Promise<string> {
    const secret = await expectAdmin(broker, 201, "POST", "/v1/secrets", { name, adapter: "postgres", kind, owner: "team-orders", settings, ...(value ? { value } : {}) });
    await expectAdmin(broker, 201, "POST", "/v1/grants", { service_account_id: workload.accountId, secret: name, scopes: [READ_SCOPE], approved_by: "alice", justification: "CHG-7" });
    return secret.id;
  }

  async function startApp(secret: string): Promise<RunningApp> {
    const port = await freePort();
    const child = spawn(process.execPath, [APP_PATH], {
      env: {
        PATH: process.env["PATH"],
        BROKER_ADDR: broker.address,
        APP_CLIENT_ID: workload.accountId,
        APP_KEY_FILE: keyFile,
        APP_DB_SECRET: secret,
        APP_DB_HOST: pg.host,
        APP_DB_PORT: String(pg.port),
        APP_DB_NAME: pg.database,
        APP_PORT: String(port),
      },
    });
    let output = "";
    child.stdout!.on("data", (chunk) => (output += String(chunk)));
    child.stderr!.on("data", (chunk) => (output += String(chunk)));
    const address = `http://127.0.0.1:${port}`;
    const app: RunningApp = {
      address,
      child,
      output: () => output,
      async orders() {
        const response = await fetch(`${address}/orders`);
        return { status: response.status, body: await response.json() };
      },
    };
    apps.push(app);
    await vi.waitFor(async () => expect((await fetch(`${address}/healthz`)).status).toBe(200), { timeout: 20_000, interval: 100 });
    return app;
  }

  async function stopApp(app: RunningApp): Promise<number | null> {
    if (app.child.exitCode !== null) return app.child.exitCode;
    const exited = once(app.child, "exit");
    app.child.kill("SIGTERM");
    const [code] = await exited;
    return code as number | null;
  }

  beforeAll(async () => {
    broker = await startSdkBroker();
    pg = await createPostgresFixture(TEST_POSTGRES_URL!);
    workload = await registerWorkload(broker);
    keyFile = path.join(broker.process.dataDir, "app-key.json");
    await writeFile(keyFile, JSON.stringify(workload.privateJwk), { mode: 0o600 });
    await expectAdmin(broker, 201, "POST", "/v1/secrets", { name: ADMIN_PASSWORD_SECRET, adapter: "local", kind: "static", owner: "team-orders", value: { password: pg.admin.password } });
  });

  afterAll(async () => {
    for (const app of apps) await stopApp(app);
    await pg?.close();
    await broker?.process.cleanup();
  });

  it("keeps answering through a lease revocation, on a new dynamic role", async () => {
    dynamicSecretId = await grantSecret("db/orders-app", "dynamic", pg.settings());
    const app = await startApp("db/orders-app");

    const first = await app.orders();
    expect(first.status, app.output()).toBe(200);
    expect(first.body).toMatchObject({ orders: pg.rowsInOrders, version: null });
    expect(first.body.role).toMatch(new RegExp(`^sb_${pg.namePrefix}_`));

    await expectAdmin(broker, 200, "POST", `/v1/leases/${first.body.lease_id}/revoke`, { reason: "suspected leak" });
    const second = await app.orders();

    expect(second.status, app.output()).toBe(200);
    expect(second.body.orders).toBe(pg.rowsInOrders);
    expect(second.body.role).not.toBe(first.body.role);
    expect(second.body.lease_id).not.toBe(first.body.lease_id);
    expect(app.output()).toContain("database rejected the credential");
  });

  it("keeps answering through a rotation of its static role's password", async () => {
    const password = randomBytes(18).toString("base64url");
    const role = await pg.createRole(password);
    await pg.sql.unsafe(`grant ${pg.readerRole} to ${role}`);
    const secretId = await grantSecret("db/orders-reporter", "static", pg.staticSettings(role), { password });
    const app = await startApp("db/orders-reporter");
    const first = await app.orders();
    expect(first.status, app.output()).toBe(200);
    expect(first.body).toMatchObject({ role, version: "1" });

    const rotation = await expectAdmin(broker, 202, "POST", `/v1/secrets/${secretId}/rotate`, { reason: "quarterly" });
    await vi.waitFor(async () => expect((await expectAdmin(broker, 200, "GET", `/v1/rotations/${rotation.id}`)).status).toBe("completed"), { timeout: 20_000 });
    // The server recycles the service's connections; new ones need the new password.
    await pg.sql`select pg_terminate_backend(pid) from pg_stat_activity where usename = ${role}`;
    const second = await app.orders();

    expect(second.status, app.output()).toBe(200);
    expect(second.body).toMatchObject({ role, version: "2", orders: pg.rowsInOrders });
  });

  it("revokes its leases when stopped", async () => {
    const app = apps[0]!;

    expect(await stopApp(app)).toBe(0);

    const live = await activeLeases(broker, workload.accountId);
    expect(live.filter((lease) => lease.secret_id === dynamicSecretId)).toEqual([]);
    expect(await pg.dynamicRoles()).toEqual([]);
    expect(app.output()).toContain('"message":"stopped"');
  });
});
