import postgres from "postgres";
import { hashEvent } from "../../../broker/audit/chain.js";

/** Rows inserted per statement when seeding audit events. */
const AUDIT_BATCH = 5_000;
const ACCOUNTS = 100;

/**
 * Seeds the register (one application, 100 service accounts) and `leases` synthetic leases
 * with SQL, issued one millisecond apart from `start`, half access tokens and half
 * credentials, each living 15 minutes.
 */
export async function seedLeases(url: string, leases: number, start: Date): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    await sql`insert into applications (id, name, technical_owner, criticality, created_at, updated_at)
      values ('app_bench', 'bench', 'team-bench@example.com', 'medium', now(), now())`;
    await sql`insert into service_accounts (id, name, application_id, technical_owner, kind, status, expires_at, review_interval_days, last_reviewed_at,
        max_token_ttl, allowed_audiences, allowed_scopes, created_at, updated_at)
      select 'sa_bench' || lpad(n::text, 20, '0'), 'bench-' || n, 'app_bench', 'dana@example.com', 'workload', 'active', now() + interval '300 days', 90, now(),
        900, '{}', '{secrets:read}', now(), now()
      from generate_series(1, ${ACCOUNTS}) as n`;
    await sql`insert into leases (id, kind, service_account_id, application_id, scopes, grant_type, issued_at, expires_at, max_expires_at, source_address)
      select 'lease_' || lpad(to_hex(n), 24, '0'),
        case when n % 2 = 0 then 'access_token' else 'credential' end,
        'sa_bench' || lpad((n % ${ACCOUNTS} + 1)::text, 20, '0'), 'app_bench', '{secrets:read}', 'client_credentials',
        ${start.toISOString()}::timestamptz + n * interval '1 millisecond',
        ${start.toISOString()}::timestamptz + n * interval '1 millisecond' + interval '15 minutes',
        ${start.toISOString()}::timestamptz + n * interval '1 millisecond' + interval '1 hour',
        '10.0.' || (n % 250) || '.' || (n % 200 + 1)
      from generate_series(1, ${leases}) as n`;
    await sql`analyze`;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/**
 * Appends `events` audit events to the chain, computing each hash as the broker does, one
 * millisecond apart from `start`, and moves the chain head to the last one.
 */
export async function seedAuditEvents(url: string, events: number, start: Date): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    const [head] = await sql<{ seq: string; hash: string }[]>`select seq, hash from audit_chain_head where id = 1`;
    let seq = Number(head!.seq);
    let prevHash = head!.hash;
    for (let done = 0; done < events; done += AUDIT_BATCH) {
      const rows = [];
      for (let index = done; index < Math.min(events, done + AUDIT_BATCH); index++) {
        seq += 1;
        const content = {
          occurredAt: new Date(start.getTime() + index),
          actor: `sa_bench${String((index % 100) + 1).padStart(20, "0")}`,
          action: index % 3 === 0 ? "token.issue" : "lease.renew",
          target: `lease_${(index + 1).toString(16).padStart(24, "0")}`,
          outcome: "success",
          requestId: null,
          sourceAddress: "10.0.0.1",
          details: { bench: true },
        };
        const hash = hashEvent({ ...content, seq, prevHash });
        rows.push({ seq, occurred_at: content.occurredAt, actor: content.actor, action: content.action, target: content.target, outcome: content.outcome,
          request_id: null, source_address: content.sourceAddress, details: sql.json(content.details), prev_hash: prevHash, hash });
        prevHash = hash;
      }
      await sql`insert into audit_events ${sql(rows)}`;
    }
    await sql`update audit_chain_head set seq = ${seq}, hash = ${prevHash} where id = 1`;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
