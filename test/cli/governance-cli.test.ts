import { readFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BrokerProcess, type CliResult, startBrokerProcess } from "../support/broker-process.js";

const ESTATE = path.resolve("examples/estate.yaml");

interface FindingView {
  id: string;
  rule: string;
  subject: { id: string };
  suppressed: boolean;
  exception_id: string | null;
}

describe("secrets-broker review, exception and findings commands", () => {
  let broker: BrokerProcess;
  let asAdmin: NodeJS.ProcessEnv;
  let asAuditor: NodeJS.ProcessEnv;
  const accounts = new Map<string, string>();

  function expectSuccess(result: CliResult): string {
    expect(result.code, result.stderr).toBe(0);
    return result.stdout;
  }

  async function cliJson(args: string[], environment: NodeJS.ProcessEnv = asAdmin): Promise<any> {
    return JSON.parse(expectSuccess(await broker.cli([...args, "--json"], environment)));
  }

  async function findings(extra: string[] = []): Promise<{ open: number; suppressed: number; items: FindingView[] }> {
    return cliJson(["findings", ...extra], asAuditor);
  }

  beforeAll(async () => {
    broker = await startBrokerProcess();
    asAdmin = { BROKER_TOKEN: (await readFile(path.join(broker.dataDir, "admin-token"), "utf8")).trim() };
    const auditor = await cliJson(["token", "create", "--role", "auditor", "--name", "cli-governance-auditor"]);
    asAuditor = { BROKER_TOKEN: auditor.token };
    const imported = await cliJson(["import", ESTATE]);
    for (const account of imported.service_accounts) accounts.set(account.name, account.id);
  });

  afterAll(async () => {
    await broker.cleanup();
  });

  it("findings lists the example estate's findings", async () => {
    const report = await findings();
    const text = expectSuccess(await broker.cli(["findings"], asAuditor));

    const rules = new Set(report.items.map((finding) => finding.rule));
    for (const rule of ["account-owner-missing", "review-overdue", "privileged-token-ttl", "supplier-grant-unbounded", "account-reuse", "grant-approval-missing"]) {
      expect(rules).toContain(rule);
    }
    expect(report.open).toBe(report.items.length);
    expect(text).toContain(`fnd_privileged-token-ttl_${accounts.get("payments-break-glass")}`);
    expect(text).toMatch(/\d+ open, 0 suppressed by exceptions/);
  });

  it("review keep clears the overdue review", async () => {
    const review = await cliJson(["review", "backup-automation", "--decision", "keep", "--reviewer", "dba-team@example.com"]);
    const overdue = await cliJson(["reviews", "--overdue"], asAuditor);
    const history = await cliJson(["reviews", "--account", "backup-automation"], asAuditor);

    expect(review.decision).toBe("keep");
    expect(review.reviewer_is_owner).toBe(true);
    expect(overdue.map((item: { name: string }) => item.name)).not.toContain("backup-automation");
    expect(history.map((item: { id: string }) => item.id)).toEqual([review.id]);
    const report = await findings(["--rule", "review-overdue"]);
    expect(report.items.map((finding) => finding.subject.id)).not.toContain(accounts.get("backup-automation"));
  });

  it("review revoke suspends the account", async () => {
    const review = await cliJson([
      "review", accounts.get("shared-ledger-reader")!, "--decision", "revoke", "--reviewer", "bob@example.com", "--notes", "split into two accounts",
    ]);
    const account = await cliJson(["sa", "show", accounts.get("shared-ledger-reader")!]);

    expect(review.decision).toBe("revoke");
    expect(account.status).toBe("suspended");
    expect(account.status_reason).toContain("split into two accounts");
  });

  it("review usage errors exit 2", async () => {
    const badDecision = await broker.cli(["review", "orders-api", "--decision", "extend", "--reviewer", "alice@example.com"], asAdmin);
    const noReviewer = await broker.cli(["review", "orders-api", "--decision", "keep"], asAdmin);

    expect(badDecision.code).toBe(2);
    expect(badDecision.stderr).toContain("--decision");
    expect(noReviewer.code).toBe(2);
    expect(noReviewer.stderr).toContain("--reviewer");
  });

  it("review without notes fails with the field", async () => {
    const result = await broker.cli(["review", "orders-api", "--decision", "change", "--reviewer", "alice@example.com"], asAdmin);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain("notes");
  });

  it("exception suppresses a finding until revoked", async () => {
    const accountId = accounts.get("payments-break-glass")!;
    const exception = await cliJson([
      "exception", "create", "--control", "privileged-token-ttl", "--account", "payments-break-glass",
      "--reason", "vendor agent cannot refresh tokens", "--compensating-controls", "network allow-list",
      "--accepted-by", "ciso@example.com", "--expires-at", "30d",
    ]);

    const open = await findings(["--rule", "privileged-token-ttl"]);
    const all = await findings(["--rule", "privileged-token-ttl", "--include-suppressed"]);
    const live = await cliJson(["exception", "list", "--status", "live"], asAuditor);
    expect(exception.status).toBe("live");
    expect(open.items.map((finding) => finding.subject.id)).not.toContain(accountId);
    expect(open.suppressed).toBe(1);
    expect(all.items.find((finding) => finding.subject.id === accountId)?.exception_id).toBe(exception.id);
    expect(live.map((item: { id: string }) => item.id)).toContain(exception.id);

    const revoked = await cliJson(["exception", "revoke", exception.id, "--reason", "agent replaced"]);
    const reopened = await findings(["--rule", "privileged-token-ttl"]);
    expect(revoked.status).toBe("revoked");
    expect(reopened.items.map((finding) => finding.subject.id)).toContain(accountId);
  });

  it("exception create needs one record", async () => {
    const both = await broker.cli(
      ["exception", "create", "--control", "account-reuse", "--account", "orders-api", "--secret", "db/orders",
        "--reason", "r", "--compensating-controls", "c", "--accepted-by", "p", "--expires-at", "30d"],
      asAdmin,
    );
    const tooLate = await broker.cli(
      ["exception", "create", "--control", "account-reuse", "--account", "orders-api",
        "--reason", "r", "--compensating-controls", "c", "--accepted-by", "p", "--expires-at", "400d"],
      asAdmin,
    );

    expect(both.code).toBe(2);
    expect(both.stderr).toContain("exactly one of --account or --secret");
    expect(tooLate.code).toBe(1);
    expect(tooLate.stderr).toContain("at most 365 days");
  });

  it("auditor reads but cannot create", async () => {
    const created = await broker.cli(
      ["exception", "create", "--control", "account-reuse", "--account", "orders-api",
        "--reason", "r", "--compensating-controls", "c", "--accepted-by", "p", "--expires-at", "30d"],
      asAuditor,
    );
    const reviewed = await broker.cli(["review", "orders-api", "--decision", "keep", "--reviewer", "alice@example.com"], asAuditor);

    expect(created.code).toBe(1);
    expect(created.stderr).toContain("403");
    expect(reviewed.code).toBe(1);
    expect(reviewed.stderr).toContain("403");
    expectSuccess(await broker.cli(["exception", "list"], asAuditor));
    expectSuccess(await broker.cli(["reviews"], asAuditor));
  });
});
