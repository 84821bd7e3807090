import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rowCount } from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import { addKeyPair, createWorkload, requestToken, signAssertion, postForm, JWT_BEARER, type Workload } from "./oauth-fixtures.js";

/**
 * The token endpoint checks a client against a cached snapshot of its account and keys, and
 * its issuance statement writes only if the database still matches that snapshot. Each test
 * first issues a token, so that the snapshot is cached, then changes the account.
 */
describe("token endpoint with a cached account snapshot", () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await startTestBroker();
  });

  afterAll(async () => {
    await broker.close();
  });

  async function warmedWorkload(fields: Record<string, unknown> = {}): Promise<Workload> {
    const workload = await createWorkload(broker, fields);
    const first = await requestToken(broker, workload);
    expect(first.status, first.text).toBe(200);
    return workload;
  }

  async function liveLeases(accountId: string): Promise<number> {
    const rows = await broker.query<{ count: number }>(
      `select count(*)::int as count from leases where service_account_id = '${accountId}' and revoked_at is null`,
    );
    return rows[0]!.count;
  }

  it("suspended account refused and nothing written", async () => {
    const workload = await warmedWorkload();
    const suspension = await broker.request("POST", `/v1/service-accounts/${workload.accountId}/suspend`, { body: { reason: "test" } });
    const leasesBefore = await rowCount(broker, "leases");

    const response = await requestToken(broker, workload);

    expect(suspension.status, suspension.text).toBe(200);
    expect(response.status).toBe(401);
    expect(response.json.error).toBe("invalid_client");
    expect(response.json.error_description).toMatch(/is suspended/);
    expect(await rowCount(broker, "leases")).toBe(leasesBefore);
    expect(await liveLeases(workload.accountId)).toBe(0);
  });

  it("narrowed scopes apply at once", async () => {
    const workload = await warmedWorkload({ allowed_scopes: ["read", "write"] });
    const patch = await broker.request("PATCH", `/v1/service-accounts/${workload.accountId}`, { body: { allowed_scopes: ["read"] } });

    const refused = await requestToken(broker, workload, { scope: "write" });
    const accepted = await requestToken(broker, workload);

    expect(patch.status, patch.text).toBe(200);
    expect(refused.status).toBe(400);
    expect(refused.json.error).toBe("invalid_scope");
    expect(accepted.status, accepted.text).toBe(200);
    expect(accepted.json.scope).toBe("read");
  });

  it("SQL change applies at once", async () => {
    const workload = await warmedWorkload({ allowed_scopes: ["read", "write"] });
    await broker.query(`update service_accounts set allowed_scopes = '{read}' where id = '${workload.accountId}'`);

    const refused = await requestToken(broker, workload, { scope: "write" });

    expect(refused.status).toBe(400);
    expect(refused.json.error).toBe("invalid_scope");
  });

  it("lowered max TTL applies at once", async () => {
    const workload = await warmedWorkload({ max_token_ttl: 600 });
    await broker.request("PATCH", `/v1/service-accounts/${workload.accountId}`, { body: { max_token_ttl: 120 } });

    const response = await requestToken(broker, workload);

    expect(response.status, response.text).toBe(200);
    expect(response.json.expires_in).toBe(120);
  });

  it("added key makes kid-less assertion ambiguous", async () => {
    const workload = await warmedWorkload();
    await addKeyPair(broker, workload.accountId);
    const assertion = await signAssertion(broker, workload, { header: { kid: undefined } });

    const response = await postForm(broker, "/v1/token", {
      grant_type: "client_credentials",
      client_assertion_type: JWT_BEARER,
      client_assertion: assertion,
    });

    expect(response.status).toBe(401);
    expect(response.json.error_description).toMatch(/several keys could verify/);
  });

  it("removing another key keeps used key", async () => {
    const workload = await warmedWorkload();
    const extra = await addKeyPair(broker, workload.accountId);
    await requestToken(broker, workload);
    const removal = await broker.request("DELETE", `/v1/service-accounts/${workload.accountId}/keys/${extra.kid}`);

    const response = await requestToken(broker, workload);

    expect(removal.status).toBe(204);
    expect(response.status, response.text).toBe(200);
  });

  it("expiry refused despite cached snapshot", async () => {
    const workload = await warmedWorkload({ expires_at: new Date(broker.clock.now().getTime() + 60_000).toISOString() });
    broker.clock.advance(61_000);

    const response = await requestToken(broker, workload);

    expect(response.status).toBe(401);
    expect(response.json.error_description).toMatch(/expired at/);
  });

  describe.skipIf(!process.env["DATABASE_URL"])("on a shared PostgreSQL database", () => {
    it("racing suspension leaves no live lease", async () => {
      const workload = await warmedWorkload();
      const sql = postgres(broker.database.url!, { max: 1, onnotice: () => undefined });
      try {
        // A suspension in progress on another connection, with the account row locked.
        const suspended = sql.begin(async (tx) => {
          await tx`select id from service_accounts where id = ${workload.accountId} for update`;
          await tx`update service_accounts set status = 'suspended', updated_at = now() where id = ${workload.accountId}`;
          const pending = requestToken(broker, workload);
          await new Promise((resolve) => setTimeout(resolve, 200));
          await tx`update leases set revoked_at = now(), revoked_by = 'test', revoke_reason = 'suspended'
                   where service_account_id = ${workload.accountId} and revoked_at is null`;
          return { pending };
        });
        const response = await (await suspended).pending;

        expect(response.status).toBe(401);
        expect(response.json.error_description).toMatch(/is suspended/);
        expect(await liveLeases(workload.accountId)).toBe(0);
      } finally {
        await sql.end();
      }
    });
  });
});
