import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditEvents, expectProblem } from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import { issueToken } from "../tokens/oauth-fixtures.js";
import { createGrant, createSecret, obtainCredential, readLease, requestCredential, workloadWithToken } from "./credential-fixtures.js";

let broker: TestBroker;

beforeAll(async () => {
  broker = await startTestBroker();
});

afterAll(async () => {
  await broker?.close();
});

describe("POST /v1/credentials with the local adapter", () => {
  it("hands out the current value of a static secret on a child lease of the access token", async () => {
    const { workload, accessToken, tokenLeaseId } = await workloadWithToken(broker);
    const secret = await createSecret(broker, { value: { api_key: "k-0123456789abcdef" }, generate: undefined });
    const grant = await createGrant(broker, { service_account_id: workload.accountId, secret: secret.name, scopes: ["secrets:read"] });

    const credential = await obtainCredential(broker, accessToken, { secret: secret.name, ttl: 600 });

    expect(credential.data).toEqual({ api_key: "k-0123456789abcdef" });
    expect(credential.version).toBe("1");
    expect(credential.lease_duration).toBe(600);
    expect(credential.renewable).toBe(true);
    const lease = await readLease(broker, credential.lease_id);
    expect(lease).toMatchObject({
      kind: "credential",
      status: "active",
      parent_lease_id: tokenLeaseId,
      secret_id: secret.id,
      secret_version: "1",
      grant_id: grant.id,
      adapter: "local",
      upstream_lease_id: null,
    });
  });

  it("generates a value from the policy and never shows it in listings, versions, audit events or logs", async () => {
    const { workload, accessToken } = await workloadWithToken(broker);
    const secret = await createSecret(broker, { generate: { length: 40, classes: ["lower", "digits"] } });
    await createGrant(broker, { service_account_id: workload.accountId, secret: secret.name });

    const credential = await obtainCredential(broker, accessToken, { secret: secret.name });
    const value = credential.data.value as string;
    expect(value).toMatch(/^[a-z0-9]{40}$/);

    const listing = await broker.request("GET", "/v1/secrets?limit=1000", { token: broker.tokens.auditor });
    const versions = await broker.request("GET", `/v1/secrets/${secret.id}/versions`, { token: broker.tokens.auditor });
    const lineage = await broker.request("GET", `/v1/lineage?secret_id=${secret.id}`, { token: broker.tokens.auditor });
    const leases = await broker.request("GET", `/v1/leases?secret_id=${secret.id}`, { token: broker.tokens.auditor });
    for (const text of [listing.text, versions.text, lineage.text, leases.text, JSON.stringify(await auditEvents(broker)), broker.logs.join("\n")]) {
      expect(text).not.toContain(value);
    }
    expect(versions.json.items[0]).toMatchObject({ version: "1", stage: "current" });
    expect(versions.json.items[0].fingerprint).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    expect(lineage.text).toContain(versions.json.items[0].fingerprint);
  });

  it("caps the TTL by the secret, the grant and the account, and the lease at the token lease's max expiry", async () => {
    const { workload, accessToken } = await workloadWithToken(broker, { max_token_ttl: 900 });
    const secret = await createSecret(broker, { default_ttl: 3600, max_ttl: 7200 });
    await createGrant(broker, { service_account_id: workload.accountId, secret: secret.name, max_ttl: 300 });

    const credential = await obtainCredential(broker, accessToken, { secret: secret.name, ttl: 7200 });

    expect(credential.lease_duration).toBe(300);
    expect(credential.warnings[0]).toMatch(/TTL of 7200s exceeded .*capped to 300s/);
    const lease = await readLease(broker, credential.lease_id);
    const parent = await readLease(broker, lease.parent_lease_id);
    expect(Date.parse(lease.max_expires_at)).toBeLessThanOrEqual(Date.parse(parent.max_expires_at));
  });

  it("renews within the caps and reports the version the lease carries and the current one", async () => {
    const { workload, accessToken } = await workloadWithToken(broker);
    const secret = await createSecret(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret: secret.name, max_ttl: 600 });
    const credential = await obtainCredential(broker, accessToken, { secret: secret.name, ttl: 120 });

    broker.clock.advance(60_000);
    const renewed = await broker.request("POST", `/v1/leases/${credential.lease_id}/renew`, { token: accessToken, body: { increment: 3600 } });

    expect(renewed.status, renewed.text).toBe(200);
    expect(renewed.json).toMatchObject({ lease_duration: 600, version: "1", current_version: "1" });
    expect(renewed.json.warnings[0]).toMatch(/capped to 600s/);
    expect(renewed.json.access_token).toBeUndefined();
  });

  it("revokes the credential lease with the access token's lease", async () => {
    const { workload, accessToken, tokenLeaseId } = await workloadWithToken(broker);
    const secret = await createSecret(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret: secret.name });
    const credential = await obtainCredential(broker, accessToken, { secret: secret.name });

    const revoked = await broker.request("POST", `/v1/leases/${tokenLeaseId}/revoke`, { token: broker.tokens.operator, body: { reason: "test" } });

    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.json.lease_ids).toEqual(expect.arrayContaining([tokenLeaseId, credential.lease_id]));
    expect((await readLease(broker, credential.lease_id)).status).toBe("revoked");
  });

  it("lets a workload revoke its own credential lease but not another account's", async () => {
    const owner = await workloadWithToken(broker);
    const other = await workloadWithToken(broker);
    const secret = await createSecret(broker);
    await createGrant(broker, { service_account_id: owner.workload.accountId, secret: secret.name });
    const credential = await obtainCredential(broker, owner.accessToken, { secret: secret.name });

    const foreign = await broker.request("POST", `/v1/leases/${credential.lease_id}/revoke`, { token: other.accessToken });
    expectProblem(foreign, 403, "forbidden");
    const foreignRenew = await broker.request("POST", `/v1/leases/${credential.lease_id}/renew`, { token: other.accessToken });
    expectProblem(foreignRenew, 403, "forbidden");

    const own = await broker.request("POST", `/v1/leases/${credential.lease_id}/revoke`, { token: owner.accessToken });
    expect(own.status, own.text).toBe(200);
    expect(own.json.lease_ids).toEqual([credential.lease_id]);
  });
});

describe("grant checks on POST /v1/credentials", () => {
  it("refuses a secret with no grant, and an unknown secret, alike: no_grant", async () => {
    const { accessToken } = await workloadWithToken(broker);
    const secret = await createSecret(broker);

    const ungranted = await requestCredential(broker, accessToken, { secret: secret.name });
    expectProblem(ungranted, 403, "no_grant");
    expect(ungranted.json.detail).toContain(secret.name);

    const unknown = await requestCredential(broker, accessToken, { secret: "test/does-not-exist" });
    expectProblem(unknown, 403, "no_grant");
  });

  it("refuses a grant for another secret: no_grant", async () => {
    const { workload, accessToken } = await workloadWithToken(broker);
    const granted = await createSecret(broker);
    const other = await createSecret(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret: granted.name });

    expectProblem(await requestCredential(broker, accessToken, { secret: other.name }), 403, "no_grant");
  });

  it("refuses once the grant has ended, and before it starts: grant_expired", async () => {
    const { workload, accessToken } = await workloadWithToken(broker);
    const secret = await createSecret(broker);
    const later = await createSecret(broker);
    const now = broker.clock.now().getTime();
    await createGrant(broker, { service_account_id: workload.accountId, secret: secret.name, not_after: new Date(now + 120_000).toISOString() });
    await createGrant(broker, { service_account_id: workload.accountId, secret: later.name, not_before: new Date(now + 3_600_000).toISOString() });

    expectProblem(await requestCredential(broker, accessToken, { secret: later.name }), 403, "grant_expired");
    await obtainCredential(broker, accessToken, { secret: secret.name });
    broker.clock.advance(121_000);
    const fresh = await issueToken(broker, workload);
    const refused = await requestCredential(broker, fresh.access_token, { secret: secret.name });
    expectProblem(refused, 403, "grant_expired");
    expect(refused.json.detail).toMatch(/ended at/);
  });

  it("refuses a token without the grant's scope: insufficient_scope, naming the scope", async () => {
    const { workload } = await workloadWithToken(broker);
    const secret = await createSecret(broker);
    await createGrant(broker, { service_account_id: workload.accountId, secret: secret.name, scopes: ["db:orders"] });
    const narrow = await issueToken(broker, workload, { scope: "secrets:read" });

    const refused = await requestCredential(broker, narrow.access_token, { secret: secret.name });
    expectProblem(refused, 403, "insufficient_scope");
    expect(refused.json.detail).toContain("db:orders");
    const scoped = await issueToken(broker, workload, { scope: "db:orders" });
    await obtainCredential(broker, scoped.access_token, { secret: secret.name });
  });

  it("stops issuing when the grant is revoked, and revokes the grant's live leases", async () => {
    const { workload, accessToken } = await workloadWithToken(broker);
    const secret = await createSecret(broker);
    const grant = await createGrant(broker, { service_account_id: workload.accountId, secret: secret.name });
    const credential = await obtainCredential(broker, accessToken, { secret: secret.name });

    const revoked = await broker.request("POST", `/v1/grants/${grant.id}/revoke`, { token: broker.tokens.operator, body: { reason: "access review" } });

    expect(revoked.status, revoked.text).toBe(200);
    expect(revoked.json.status).toBe("revoked");
    expect((await readLease(broker, credential.lease_id)).status).toBe("revoked");
    expectProblem(await requestCredential(broker, accessToken, { secret: secret.name }), 403, "no_grant");
  });

  it("audits each refusal with its reason and without the token", async () => {
    const { accessToken, workload } = await workloadWithToken(broker);
    const secret = await createSecret(broker);
    await requestCredential(broker, accessToken, { secret: secret.name });

    const denied = (await auditEvents(broker, "action=credential.issue")).filter((event) => event.outcome === "denied" && event.details["service_account_id"] === workload.accountId);
    expect(denied).toHaveLength(1);
    expect(denied[0]!.details["reason"]).toBe("no_grant");
    expect(JSON.stringify(denied)).not.toContain(accessToken);
  });
});

describe("authentication and bad input on POST /v1/credentials", () => {
  it("needs a workload's access token: 401 without one, 403 for an operator token", async () => {
    expectProblem(await requestCredential(broker, null, { secret: "a/b" }), 401, "unauthenticated");
    expectProblem(await requestCredential(broker, "not-a-token", { secret: "a/b" }), 401, "unauthenticated");
    expectProblem(await requestCredential(broker, broker.tokens.admin, { secret: "a/b" }), 403, "forbidden");
  });

  it("refuses a revoked access token", async () => {
    const { accessToken, tokenLeaseId } = await workloadWithToken(broker);
    await broker.request("POST", `/v1/leases/${tokenLeaseId}/revoke`, { token: broker.tokens.operator });
    expectProblem(await requestCredential(broker, accessToken, { secret: "a/b" }), 401, "unauthenticated");
  });

  const badBodies: [string, unknown, string][] = [
    ["missing secret", {}, "secret"],
    ["secret not a path", { secret: "Not A Path" }, "secret"],
    ["secret with empty segment", { secret: "db//orders" }, "secret"],
    ["ttl too small", { secret: "a/b", ttl: 1 }, "ttl"],
    ["ttl not an integer", { secret: "a/b", ttl: 60.5 }, "ttl"],
    ["ttl as text", { secret: "a/b", ttl: "600" }, "ttl"],
    ["unknown field", { secret: "a/b", version: "1" }, "version"],
  ];
  it.each(badBodies)("rejects %s with the field named", async (_label, body, field) => {
    const { accessToken } = await workloadWithToken(broker);
    const response = await requestCredential(broker, accessToken, body);
    expectProblem(response, 400, "validation_failed");
    expect(response.json.invalid_params.map((param: { name: string }) => param.name)).toContain(field);
  });
});
