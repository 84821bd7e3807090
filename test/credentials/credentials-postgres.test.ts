import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sweepExpiredLeases } from "../../broker/leases/expiry-sweep.js";
import { retryUpstreamRevocations } from "../../broker/leases/upstream-revoker.js";
import { createPostgresFixture, type PostgresFixture, TEST_POSTGRES_URL } from "../support/postgres-fixture.js";
import { auditEvents, expectProblem, uniqueName } from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import { createGrant, createSecret, obtainCredential, readLease, workloadWithToken } from "./credential-fixtures.js";

/**
 * Dynamic PostgreSQL users end to end: the broker's PostgreSQL adapter against the real
 * server of TEST_POSTGRES_URL (started by .ci/run with password authentication, so that
 * passwords and VALID UNTIL are checked), with logins through postgres.js. The broker's
 * clock starts near the real time here, because PostgreSQL checks VALID UNTIL against its own.
 */
describe.skipIf(!TEST_POSTGRES_URL)("dynamic PostgreSQL credentials", () => {
  let fixture: PostgresFixture;
  let broker: TestBroker;
  let secretName: string;

  beforeAll(async () => {
    fixture = await createPostgresFixture(TEST_POSTGRES_URL!);
    // Two minutes back, so that a test can move the clock to just before the real time.
    broker = await startTestBroker({ now: new Date(Date.now() - 120_000).toISOString() });
    const admin = await createSecret(broker, { name: `db/${uniqueName("admin")}`, value: { password: fixture.admin.password }, generate: undefined });
    const dynamic = await createSecret(broker, {
      name: `db/${uniqueName("orders-readonly")}`,
      adapter: "postgres",
      kind: "dynamic",
      generate: undefined,
      settings: fixture.settings({ connection: { password_secret: admin.name } }),
    });
    secretName = dynamic.name;
  });

  afterAll(async () => {
    await broker?.close();
    await fixture?.close();
  });

  async function login(data: Record<string, string>): Promise<unknown> {
    const client = fixture.connectAs(data["username"]!, data["password"]!);
    try {
      const rows = await client`select count(*)::int as orders from orders`;
      return rows[0]!["orders"];
    } finally {
      await client.end({ timeout: 1 });
    }
  }

  async function loginError(data: Record<string, string>): Promise<string | undefined> {
    return login(data).then(
      () => undefined,
      (error: postgres.PostgresError) => error.code,
    );
  }

  it("issues a login role in the group", async () => {
    const { workload, accessToken } = await workloadWithToken(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret: secretName });

    const credential = await obtainCredential(broker, accessToken, { secret: secretName, ttl: 600 });

    expect(Object.keys(credential.data).sort()).toEqual(["password", "username"]);
    expect(await login(credential.data)).toBe(fixture.rowsInOrders);
    const role = await fixture.role(credential.data.username);
    expect(role!.member_of).toEqual([fixture.readerRole]);
    expect(role!.rolvaliduntil!.toISOString()).toBe(credential.expires_at);
    expect((await readLease(broker, credential.lease_id)).upstream_lease_id).toBe(credential.data.username);
  });

  it("renew moves VALID UNTIL, revoke drops the role", async () => {
    const { workload, accessToken } = await workloadWithToken(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret: secretName });
    const credential = await obtainCredential(broker, accessToken, { secret: secretName, ttl: 120 });

    const renewed = await broker.request("POST", `/v1/leases/${credential.lease_id}/renew`, { token: accessToken, body: { increment: 600 } });
    expect(renewed.status, renewed.text).toBe(200);
    expect((await fixture.role(credential.data.username))!.rolvaliduntil!.toISOString()).toBe(renewed.json.expires_at);

    const revoked = await broker.request("POST", `/v1/leases/${credential.lease_id}/revoke`, { token: accessToken });
    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.json.upstream).toEqual({ revoked: 1, failed: 0, pending: 0 });
    expect(await fixture.role(credential.data.username)).toBeUndefined();
    expect(await loginError(credential.data)).toMatch(/^28/);
  });

  it("token revocation ends the database login", async () => {
    const { workload, accessToken, tokenLeaseId } = await workloadWithToken(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret: secretName });
    const credential = await obtainCredential(broker, accessToken, { secret: secretName });
    const session = fixture.connectAs(credential.data.username, credential.data.password);
    await session`select 1`;

    await broker.request("POST", `/v1/leases/${tokenLeaseId}/revoke`, { token: broker.tokens.operator });

    await expect(session`select 1`).rejects.toThrow();
    expect(await loginError(credential.data)).toMatch(/^28/);
  });

  it("expired role cannot log in and is dropped", async () => {
    // Issue on a broker clock 57 s behind, so that the 60 s credential ends 3 s from now.
    broker.clock.set(new Date(Date.now() - 57_000));
    const { workload, accessToken } = await workloadWithToken(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret: secretName });
    const credential = await obtainCredential(broker, accessToken, { secret: secretName, ttl: 60 });
    expect(await login(credential.data)).toBe(fixture.rowsInOrders);

    await new Promise((resolve) => setTimeout(resolve, Date.parse(credential.expires_at) - Date.now() + 500));
    expect(await loginError(credential.data)).toBe("28P01");

    broker.clock.set(new Date());
    await sweepExpiredLeases(broker.deps);
    await retryUpstreamRevocations(broker.deps);
    expect(await fixture.role(credential.data.username)).toBeUndefined();
  });

  it("other workload cannot renew or revoke", async () => {
    broker.clock.set(new Date());
    const owner = await workloadWithToken(broker);
    const intruder = await workloadWithToken(broker);
    await createGrant(broker, { service_account_id: owner.workload.accountId, secret: secretName });
    const credential = await obtainCredential(broker, owner.accessToken, { secret: secretName });

    expectProblem(await broker.request("POST", `/v1/leases/${credential.lease_id}/revoke`, { token: intruder.accessToken }), 403, "forbidden");
    expectProblem(await broker.request("POST", `/v1/leases/${credential.lease_id}/renew`, { token: intruder.accessToken }), 403, "forbidden");
    expect(await login(credential.data)).toBe(fixture.rowsInOrders);
  });

  it("passwords stay out of logs and exports", async () => {
    broker.clock.set(new Date());
    const { workload, accessToken } = await workloadWithToken(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret: secretName });
    const credential = await obtainCredential(broker, accessToken, { secret: secretName });

    const texts = [
      broker.logs.join("\n"),
      JSON.stringify(await auditEvents(broker)),
      (await broker.request("GET", "/v1/leases?limit=1000", { token: broker.tokens.auditor })).text,
      (await broker.request("GET", "/v1/secrets?limit=1000", { token: broker.tokens.auditor })).text,
      (await broker.request("GET", "/v1/lineage", { token: broker.tokens.auditor })).text,
    ];
    for (const text of texts) {
      expect(text).not.toContain(credential.data.password);
      expect(text).not.toContain(fixture.admin.password);
    }
  });
});
