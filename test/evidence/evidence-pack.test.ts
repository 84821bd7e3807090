import { mkdtemp, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { CompactSign, generateKeyPair } from "jose";
import { writeEvidencePack } from "../../broker/evidence/evidence-export.js";
import { verifyEvidencePack } from "../../broker/evidence/evidence-verify.js";
import { createSecret } from "../credentials/credential-fixtures.js";
import { seedEvidenceActivity } from "./evidence-fixtures.js";
import { createServiceAccount } from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";

const DAY_MS = 86_400_000;

describe("evidence pack", () => {
  let broker: TestBroker;
  let jwks: { keys: any[] };
  const dirs: string[] = [];

  async function exportPack(window: { from?: Date; to?: Date } = {}): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), "sb-evidence-"));
    dirs.push(dir);
    const now = broker.clock.now();
    await broker.deps.auditChain.flush();
    await writeEvidencePack({ db: broker.deps.db, keyRing: broker.deps.keyRing, issuer: broker.deps.config.issuer, config: broker.deps.config }, dir, { from: window.from, to: window.to ?? now }, now);
    return dir;
  }

  beforeAll(async () => {
    broker = await startTestBroker();
    await seedEvidenceActivity(broker);
    jwks = (await broker.request("GET", "/.well-known/jwks.json")).json;
  });

  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
  });

  afterAll(async () => {
    await broker?.close();
  });

  it("verifies as exported, with every file listed", async () => {
    const dir = await exportPack();

    const result = await verifyEvidencePack(dir, jwks);

    expect(result.problems).toEqual([]);
    expect(result.valid).toBe(true);
    expect(result.audit_events).toBeGreaterThan(5);
    const manifest = JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8"));
    expect(manifest.files.map((file: any) => file.path)).toEqual(
      expect.arrayContaining(["service-accounts.csv", "privileged-accounts.ndjson", "supplier-access.csv", "grants.csv", "rotations.ndjson", "lineage.csv", "auth-events.csv", "audit-chain.ndjson", "controls.json", "controls.md", "oscal-assessment-results.json"]),
    );
  });

  it("holds the lineage and the authentication events of the window", async () => {
    const dir = await exportPack();

    const lineage = (await readFile(path.join(dir, "lineage.ndjson"), "utf8")).trim().split("\n").map((line) => JSON.parse(line));
    const auth = (await readFile(path.join(dir, "auth-events.ndjson"), "utf8")).trim().split("\n").map((line) => JSON.parse(line));
    expect(lineage.map((row) => row.kind).sort()).toEqual(["access_token", "credential"]);
    expect(auth.map((event) => event.action)).toEqual(expect.arrayContaining(["token.issue", "credential.issue", "auth.authenticate"]));
    expect(auth.find((event) => event.action === "auth.authenticate").outcome).toBe("denied");
  });

  it("fails rotation for a static secret without a rotation policy", async () => {
    const unrotated = await createSecret(broker);

    const controls = JSON.parse(await readFile(path.join(await exportPack(), "controls.json"), "utf8")).controls;

    const rotation = controls.find((control: any) => control.id === "NHI7").product_controls.find((entry: any) => entry.id === "rotation-max-age");
    expect(rotation.status).toBe("not_satisfied");
    expect(rotation.counts.static_secrets_without_rotation_policy).toBe(1);
    const deleted = await broker.request("DELETE", `/v1/secrets/${unrotated.id}`, { token: broker.tokens.operator });
    expect(deleted.status, deleted.text).toBe(200);
  });

  it("reports each control with a status and its counts", async () => {
    const dir = await exportPack();

    const controls = JSON.parse(await readFile(path.join(dir, "controls.json"), "utf8")).controls;
    const ids = controls.map((control: any) => `${control.framework} ${control.id}`);
    expect(ids).toEqual(expect.arrayContaining(["NIS2 Art. 21(2)(d)", "NIS2 Art. 21(2)(i)", "NIS2 Art. 21(2)(j)", "CIR 2024/2690 11.2", "CIR 2024/2690 3.2", "NIST CSF 2.0 PR.AA-05", "OWASP NHI Top 10 2025 NHI9"]));
    const mfa = controls.find((control: any) => control.id === "Art. 21(2)(j)");
    expect(mfa.status).toBe("not_satisfied");
    const logging = controls.find((control: any) => control.id === "3.2");
    expect(logging.status).toBe("satisfied");
    expect(logging.product_controls[0].counts.audit_events_in_window).toBeGreaterThan(5);
    const oscal = JSON.parse(await readFile(path.join(dir, "oscal-assessment-results.json"), "utf8"));
    const titles = oscal["assessment-results"].results[0].findings.map((finding: any) => finding.title);
    expect(titles).toEqual(expect.arrayContaining(controls.map((control: any) => `${control.framework} ${control.id} ${control.title}`)));
    expect(await readFile(path.join(dir, "controls.md"), "utf8")).toContain("| NIS2 | Art. 21(2)(d) Supply chain security |");
  });

  it("ties control status to findings and exceptions", async () => {
    const account = await createServiceAccount(broker, { privileged: true, max_token_ttl: 3600 });
    const control = async (dir: string) => JSON.parse(await readFile(path.join(dir, "controls.json"), "utf8")).controls.find((entry: any) => entry.id === "NHI7");

    const before = await control(await exportPack());
    const exception = await broker.request("POST", "/v1/exceptions", {
      body: {
        control: "privileged-token-ttl",
        service_account_id: account.id,
        reason: "legacy batch job",
        compensating_controls: "network allow-list",
        accepted_by: "ciso@example.com",
        expires_at: new Date(broker.clock.now().getTime() + 30 * DAY_MS).toISOString(),
      },
    });
    expect(exception.status, exception.text).toBe(201);
    const dir = await exportPack();
    const after = await control(dir);

    expect(before.status).toBe("not_satisfied");
    expect(before.product_controls[0].counts["privileged-token-ttl_open"]).toBe(1);
    expect(after.status).toBe("satisfied");
    expect(after.product_controls[0].counts["privileged-token-ttl_accepted"]).toBe(1);
    const findings = (await readFile(path.join(dir, "findings.ndjson"), "utf8")).trim().split("\n").map((line) => JSON.parse(line));
    expect(findings.find((finding) => finding.subject_id === account.id && finding.rule === "privileged-token-ttl")).toMatchObject({ suppressed: true, exception_id: exception.json.id });
    expect(await readFile(path.join(dir, "exceptions.csv"), "utf8")).toContain(exception.json.id);
    const oscal = JSON.parse(await readFile(path.join(dir, "oscal-assessment-results.json"), "utf8"));
    const rendered = oscal["assessment-results"].results[0].findings.find((finding: any) => finding.title === `privileged-token-ttl: service_account ${account.id}`);
    expect(rendered.remarks).toBe(`Risk accepted by exception ${exception.json.id}.`);
  });

  it("names a file whose content changed", async () => {
    const dir = await exportPack();
    const file = path.join(dir, "grants.csv");
    await writeFile(file, `${await readFile(file, "utf8")}x`);

    const result = await verifyEvidencePack(dir, jwks);

    expect(result.valid).toBe(false);
    expect(result.problems).toEqual(["grants.csv: SHA-256 does not match the manifest: the file was changed"]);
  });

  it("names a removed file and an added one", async () => {
    const dir = await exportPack();
    await unlink(path.join(dir, "rotations.csv"));
    await writeFile(path.join(dir, "extra.csv"), "a,b\r\n");

    const result = await verifyEvidencePack(dir, jwks);

    expect(result.problems).toEqual(["rotations.csv: missing", "extra.csv: not listed in the manifest"]);
  });

  it("rejects a manifest edited to match a changed file", async () => {
    const dir = await exportPack();
    const manifestPath = path.join(dir, "manifest.json");
    const manifest = JSON.parse(await readFile(manifestPath, "utf8"));
    manifest.files[0].sha256 = "0".repeat(64);
    await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);

    const result = await verifyEvidencePack(dir, jwks);

    expect(result.problems).toEqual(["manifest.json: differs from the manifest that manifest.jws signs"]);
  });

  it("rejects a manifest signed by another key", async () => {
    const dir = await exportPack();
    const forger = await generateKeyPair("ES256");
    const bytes = await readFile(path.join(dir, "manifest.json"));
    const kid = JSON.parse(Buffer.from((await readFile(path.join(dir, "manifest.jws"), "utf8")).split(".")[0]!, "base64url").toString()).kid;
    await writeFile(path.join(dir, "manifest.jws"), await new CompactSign(bytes).setProtectedHeader({ alg: "ES256", kid, typ: "secrets-broker-evidence+jws" }).sign(forger.privateKey));

    const result = await verifyEvidencePack(dir, jwks);

    expect(result.valid).toBe(false);
    expect(result.problems[0]).toMatch(/^manifest.jws: the signature does not verify with the given keys/);
  });

  it("names an altered audit event", async () => {
    const dir = await exportPack();
    const chainPath = path.join(dir, "audit-chain.ndjson");
    const events = (await readFile(chainPath, "utf8")).trim().split("\n").map((line) => JSON.parse(line));
    events[1].actor = "someone-else";
    await writeFile(chainPath, `${events.map((event) => JSON.stringify(event)).join("\n")}\n`);

    const result = await verifyEvidencePack(dir, jwks);

    expect(result.problems).toContain("audit-chain.ndjson: SHA-256 does not match the manifest: the file was changed");
    expect(result.problems).toContain(`audit-chain.ndjson: event ${events[1].seq} was altered: its hash does not match its content`);
  });

  it("keeps activity outside the window out, and the register in", async () => {
    const later = new Date(broker.clock.now().getTime() + DAY_MS);
    broker.clock.set(later);
    const dir = await exportPack({ from: new Date(later.getTime() - 1000) });

    const lineage = (await readFile(path.join(dir, "lineage.ndjson"), "utf8")).trim();
    const accounts = (await readFile(path.join(dir, "service-accounts.ndjson"), "utf8")).trim().split("\n");
    expect(lineage).toBe("");
    expect(accounts.length).toBeGreaterThan(0);
    expect((await verifyEvidencePack(dir, jwks)).valid).toBe(true);
  });
});
