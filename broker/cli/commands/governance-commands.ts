import { type Command, Option } from "commander";
import { BrokerClient } from "../broker-client.js";
import { UsageError } from "../cli-error.js";
import { parseTimeOption } from "../options.js";
import { printFields, printJson, printTable } from "../output.js";
import { resolveAccountId } from "../resolve-account.js";
import { resolveSecretId } from "../resolve-secret.js";

const REVIEW_COLUMNS = ["id", "service_account_id", "decision", "reviewer", "reviewed_at", "next_review_at"];
const OVERDUE_COLUMNS = ["service_account_id", "name", "technical_owner", "next_review_at", "days_overdue", "beyond_grace"];
const EXCEPTION_COLUMNS = ["id", "control", "service_account_id", "secret_id", "accepted_by", "expires_at", "status"];
const FINDING_COLUMNS = ["severity", "rule", "id", "message"];
/** With --include-suppressed, the exception that suppresses each finding is shown too. */
const SUPPRESSED_FINDING_COLUMNS = ["severity", "rule", "id", "exception_id", "message"];

export function addGovernanceCommands(program: Command): void {
  addReviewCommands(program);
  addExceptionCommands(program.command("exception").description("manage exceptions: accepted deviations from a policy rule"));
  addFindingsCommand(program);
}

function addReviewCommands(program: Command): void {
  program
    .command("review")
    .description("record an access review of a service account; revoke also suspends it and revokes its leases")
    .argument("<account>", "service account id (sa_...) or name")
    .addOption(new Option("--decision <decision>", "keep, change or revoke").choices(["keep", "change", "revoke"]).makeOptionMandatory())
    .requiredOption("--reviewer <person>", "the owner or delegate who attests the decision")
    .option("--notes <text>", "what must change, or why access ends (required for change and revoke)")
    .option("--json", "print JSON")
    .action(async (account: string, options) => {
      const client = BrokerClient.fromEnvironment();
      const id = await resolveAccountId(client, account);
      const review = await client.json("POST", `/v1/service-accounts/${encodeURIComponent(id)}/reviews`, {
        decision: options.decision,
        reviewer: options.reviewer,
        notes: options.notes,
      });
      return options.json ? printJson(review) : printFields(review);
    });

  program
    .command("reviews")
    .description("list access reviews, newest first, or the accounts whose review is overdue")
    .option("--account <account>", "only this service account's reviews (id or name)")
    .option("--decision <decision>", "only reviews with this decision")
    .option("--overdue", "list active accounts whose review is overdue instead")
    .option("--json", "print JSON")
    .action(async (options) => {
      const client = BrokerClient.fromEnvironment();
      if (options.overdue) {
        const overdue = await client.json("GET", "/v1/reviews/overdue");
        return options.json ? printJson(overdue.items) : printTable(overdue.items, OVERDUE_COLUMNS);
      }
      const items = await client.listAll("/v1/reviews", {
        service_account_id: options.account ? await resolveAccountId(client, options.account) : undefined,
        decision: options.decision,
      });
      return options.json ? printJson(items) : printTable(items, REVIEW_COLUMNS);
    });
}

function addExceptionCommands(exception: Command): void {
  exception
    .command("create")
    .description("record an accepted exception for one service account or one secret")
    .requiredOption("--control <rule>", "finding rule id whose requirement is not met, such as privileged-token-ttl")
    .option("--account <account>", "service account covered (id or name)")
    .option("--secret <secret>", "secret covered (id or name)")
    .requiredOption("--reason <text>", "why the control is not met")
    .requiredOption("--compensating-controls <text>", "what reduces the risk meanwhile")
    .requiredOption("--accepted-by <person>", "who accepted the residual risk")
    .option("--accepted-at <time>", "when the risk was accepted (RFC 3339 or relative such as -2d); now by default")
    .requiredOption("--expires-at <time>", "end of the exception, at most one year ahead (RFC 3339 or relative such as 90d)")
    .option("--json", "print JSON")
    .action(async (options) => {
      if ((options.account === undefined) === (options.secret === undefined)) {
        throw new UsageError("give exactly one of --account or --secret");
      }
      const client = BrokerClient.fromEnvironment();
      const created = await client.json("POST", "/v1/exceptions", {
        control: options.control,
        service_account_id: options.account ? await resolveAccountId(client, options.account) : undefined,
        secret_id: options.secret ? await resolveSecretId(client, options.secret) : undefined,
        reason: options.reason,
        compensating_controls: options.compensatingControls,
        accepted_by: options.acceptedBy,
        accepted_at: options.acceptedAt ? parseTimeOption("--accepted-at", options.acceptedAt) : undefined,
        expires_at: parseTimeOption("--expires-at", options.expiresAt),
      });
      return options.json ? printJson(created) : printFields(created);
    });

  exception
    .command("list")
    .description("list exceptions, with filters")
    .addOption(new Option("--status <status>", "live, expired or revoked").choices(["live", "expired", "revoked"]))
    .option("--control <rule>", "only exceptions for this rule id")
    .option("--account <account>", "only exceptions covering this service account (id or name)")
    .option("--secret <secret>", "only exceptions covering this secret (id or name)")
    .option("--json", "print JSON")
    .action(async (options) => {
      const client = BrokerClient.fromEnvironment();
      const items = await client.listAll("/v1/exceptions", {
        status: options.status,
        control: options.control,
        service_account_id: options.account ? await resolveAccountId(client, options.account) : undefined,
        secret_id: options.secret ? await resolveSecretId(client, options.secret) : undefined,
      });
      return options.json ? printJson(items) : printTable(items, EXCEPTION_COLUMNS);
    });

  exception
    .command("revoke")
    .description("end an exception before it expires, so its findings are reported again")
    .argument("<id>", "exception id (exc_...)")
    .option("--reason <text>", "why, recorded in the audit log")
    .option("--json", "print JSON")
    .action(async (id: string, options) => {
      const body = options.reason ? { reason: options.reason } : {};
      const revoked = await BrokerClient.fromEnvironment().json("POST", `/v1/exceptions/${encodeURIComponent(id)}/revoke`, body);
      return options.json ? printJson(revoked) : printFields(revoked);
    });
}

function addFindingsCommand(program: Command): void {
  program
    .command("findings")
    .description("list policy findings computed from the broker's current data")
    .option("--rule <rule>", "only findings of this rule id")
    .addOption(new Option("--severity <severity>", "only findings of this severity").choices(["low", "medium", "high", "critical"]))
    .option("--include-suppressed", "also list findings that a live exception suppresses")
    .option("--json", "print the whole report as JSON")
    .action(async (options) => {
      const params = new URLSearchParams();
      if (options.rule) params.set("rule", options.rule);
      if (options.severity) params.set("severity", options.severity);
      if (options.includeSuppressed) params.set("include_suppressed", "true");
      const report = await BrokerClient.fromEnvironment().json("GET", `/v1/findings?${params}`);
      if (options.json) {
        return printJson(report);
      }
      printTable(report.items, options.includeSuppressed ? SUPPRESSED_FINDING_COLUMNS : FINDING_COLUMNS);
      process.stdout.write(`${report.open} open, ${report.suppressed} suppressed by exceptions\n`);
    });
}
