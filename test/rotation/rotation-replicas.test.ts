import { randomBytes, randomUUID } from "node:crypto";
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from "jose";
import postgres from "postgres";
import { afterAll, describe, expect, it } from "vitest";
import { logLines, type ReplicaProcess, type ReplicaSettings, readAdminToken, startReplicaProcess } from "../support/replica-process.js";
import { createScratchDatabase, type ScratchDatabase } from "../support/test-database.js";

const SECRET_COUNT = 200;
/** Secrets created in parallel through the API during setup. */
const CREATE_CONCURRENCY = 20;
/** Every second, so that a test waits at most about one second for a tick. */
const EVERY_SECOND = "* * * * * *";
/** The smallest claim TTL the broker accepts, in seconds. */
const SHORT_CLAIM_TTL_SECONDS = 15;
const ALL_DONE_TIMEOUT_MS = 60_000;
const POLL_INTERVAL_MS = 200;
const JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const FUTURE_EXPIRY = "2027-06-01T00:00:00.000Z";

type Json = any;

/** A JSON response from a broker process. */
interface JsonResponse {
  status: number;
  json: Json;
  text: string;
}

/** Sends a JSON request to a broker process with a bearer token. */
async function send(address: string, token: string, method: string, route: string, body?: unknown): Promise<JsonResponse> {
  const response = await fetch(`${address}${route}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, text, json: text ? JSON.parse(text) : undefined };
}

/** Sends a request and fails the test unless the broker responds with `status`. */
async function expectStatus(status: number, address: string, token: string, method: string, route: string, body?: unknown): Promise<Json> {
  const response = await send(address, token, method, route, body);
  expect(response.status, `${method} ${route}: ${response.text}`).toBe(status);
  return response.json;
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
async function waitFor<T>(description: string, timeoutMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) {
      return value;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}`);
    }
    await sleep(POLL_INTERVAL_MS);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function newSecretBody(name: string): Record<string, unknown> {
  return { name, adapter: "local", kind: "static", owner: "team-rotation", generate: { length: 32 }, rotation: { max_age: 3600 } };
}

/** Returns the pid part of a claim owner, which is `host:pid:random`. */
function claimPid(claimedBy: string): number {
  return Number(claimedBy.split(":").at(-2));
}

/** Stages of each version of one secret, read from the API, as `{ version: stage }`. */
async function versionStages(address: string, token: string, secretId: string): Promise<Record<string, string>> {
  const page = await expectStatus(200, address, token, "GET", `/v1/secrets/${secretId}/versions`);
  return Object.fromEntries(page.items.map((item: { version: string; stage: string }) => [item.version, item.stage]));
}

/** A workload with a grant for one secret, able to obtain its credential from any replica. */
interface Workload {
  accountId: string;
  kid: string;
  privateKey: CryptoKey;
}

async function registerWorkload(address: string, adminToken: string, secretName: string): Promise<Workload> {
  const application = await expectStatus(201, address, adminToken, "POST", "/v1/applications", { name: `rotation-${randomUUID()}`, technical_owner: "team-rotation@example.com" });
  const account = await expectStatus(201, address, adminToken, "POST", "/v1/service-accounts", {
    name: `rotation-reader-${randomUUID()}`,
    application_id: application.id,
    technical_owner: "alice@example.com",
    expires_at: FUTURE_EXPIRY,
    allowed_scopes: ["secrets:read"],
  });
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const kid = `rotation-reader-${randomUUID()}`;
  await expectStatus(201, address, adminToken, "POST", `/v1/service-accounts/${account.id}/keys`, { jwk: { ...(await exportJWK(publicKey)), kid } });
  await expectStatus(201, address, adminToken, "POST", "/v1/grants", {
    service_account_id: account.id,
    secret: secretName,
    scopes: ["secrets:read"],
    approved_by: "alice@example.com",
    justification: "CHG-1234",
  });
  return { accountId: account.id, kid, privateKey };
}

/** Obtains an access token and then a credential for `secretName` from the replica at `address`. */
async function obtainCredential(address: string, issuer: string, workload: Workload, secretName: string): Promise<Json> {
  const assertion = await new SignJWT({})
    .setProtectedHeader({ alg: "ES256", kid: workload.kid, typ: "JWT" })
    .setIssuer(workload.accountId)
    .setSubject(workload.accountId)
    .setAudience(issuer)
    .setIssuedAt()
    .setExpirationTime("60s")
    .setJti(randomUUID())
    .sign(workload.privateKey);
  const tokenResponse = await fetch(`${address}/v1/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", client_assertion_type: JWT_BEARER, client_assertion: assertion, scope: "secrets:read" }),
  });
  const tokenText = await tokenResponse.text();
  expect(tokenResponse.status, tokenText).toBe(200);
  const accessToken = JSON.parse(tokenText).access_token as string;
  return expectStatus(200, address, accessToken, "POST", "/v1/credentials", { secret: secretName, ttl: 600 });
}

/**
 * A transaction on its own connection that holds a row lock on version 1 of a secret.
 * The finish step updates that row (current to previous), so it waits for this lock,
 * while the rotate request and the create, set and test steps never touch the row.
 */
interface VersionLock {
  backendPid: number;
  release(): Promise<void>;
}

async function lockCurrentVersion(sql: postgres.Sql, secretId: string): Promise<VersionLock> {
  const connection = await sql.reserve();
  await connection`begin`;
  const [backend] = await connection<{ pid: number }[]>`select pg_backend_pid() as pid`;
  const locked = await connection`select version from secret_versions where secret_id = ${secretId} and version = '1' for no key update`;
  expect(locked).toHaveLength(1);
  let released = false;
  return {
    backendPid: backend!.pid,
    async release() {
      if (released) {
        return;
      }
      released = true;
      await connection`rollback`;
      connection.release();
    },
  };
}

/** Waits until a backend waits for `lock`, and returns that backend's pid and query. */
async function waitUntilBlocked(sql: postgres.Sql, lock: VersionLock): Promise<{ pid: number; query: string }> {
  return waitFor("a transaction blocked by the version lock", 15_000, async () => {
    const rows = await sql<{ pid: number; query: string }[]>`
      select pid, query from pg_stat_activity where ${lock.backendPid}::int = any(pg_blocking_pids(pid))`;
    return rows[0];
  });
}

/** Waits until a rotation, read through the API, has completed `step`. */
async function waitForLastStep(address: string, token: string, rotationId: string, step: string): Promise<Json> {
  return waitFor(`rotation ${rotationId} to complete its ${step} step`, 15_000, async () => {
    const rotation = await expectStatus(200, address, token, "GET", `/v1/rotations/${rotationId}`);
    return rotation.last_step === step ? rotation : undefined;
  });
}

async function waitForStatus(address: string, token: string, rotationId: string, status: string, timeoutMs: number): Promise<Json> {
  return waitFor(`rotation ${rotationId} to be ${status}`, timeoutMs, async () => {
    const rotation = await expectStatus(200, address, token, "GET", `/v1/rotations/${rotationId}`);
    return rotation.status === status ? rotation : undefined;
  });
}

/** `rotation completed` log lines of one process for `rotationId`. */
function completionsLogged(replica: ReplicaProcess, rotationId: string): number {
  return logLines(replica).filter((line) => line["msg"] === "rotation completed" && line["rotationId"] === rotationId).length;
}

describe.skipIf(!process.env.DATABASE_URL)("rotation across broker processes on PostgreSQL", () => {
  const processes: ReplicaProcess[] = [];
  const databases: ScratchDatabase[] = [];
  const connections: postgres.Sql[] = [];
  const locks: VersionLock[] = [];

  afterAll(async () => {
    for (const lock of locks) {
      await lock.release().catch(() => undefined);
    }
    await Promise.all(processes.map((replica) => replica.cleanup()));
    await Promise.all(connections.map((sql) => sql.end()));
    await Promise.all(databases.map((database) => database.drop()));
  });

  /** Creates a scratch database, a direct connection to it, and replica settings that share one master key. */
  async function newBroker(environment: NodeJS.ProcessEnv): Promise<{ sql: postgres.Sql; settings: ReplicaSettings }> {
    const database = (await createScratchDatabase("sbrotrep"))!;
    databases.push(database);
    const sql = postgres(database.url, { max: 4, onnotice: () => undefined });
    connections.push(sql);
    return { sql, settings: { databaseUrl: database.url, masterKey: randomBytes(32).toString("base64"), environment } };
  }

  async function startReplica(settings: ReplicaSettings, issuer?: string): Promise<ReplicaProcess> {
    const replica = await startReplicaProcess({ ...settings, issuer });
    processes.push(replica);
    return replica;
  }

  it("three replicas rotate 200 secrets once", async () => {
    const { sql, settings } = await newBroker({ BROKER_ROTATION_SCHEDULE: EVERY_SECOND });
    // The first process initializes the database and writes the admin token. The others join it.
    const first = await startReplica(settings);
    const replicas = [first, ...(await Promise.all([startReplica(settings, first.address), startReplica(settings, first.address)]))];
    const adminToken = await readAdminToken(first);

    const secretIds: string[] = [];
    for (let offset = 0; offset < SECRET_COUNT; offset += CREATE_CONCURRENCY) {
      const batch = Array.from({ length: Math.min(CREATE_CONCURRENCY, SECRET_COUNT - offset) }, (_, index) => offset + index);
      const created = await Promise.all(batch.map((index) => expectStatus(201, replicas[index % replicas.length]!.address, adminToken, "POST", "/v1/secrets", newSecretBody(`rot/replicas-${index}`))));
      secretIds.push(...created.map((secret) => secret.id as string));
    }
    expect(new Set(secretIds).size).toBe(SECRET_COUNT);

    const dueAt = Date.now();
    const madeDue = await sql`update secrets set next_rotation_at = now() - interval '1 second' where name like 'rot/replicas-%'`;
    expect(madeDue.count).toBe(SECRET_COUNT);

    const counts = await waitFor("every rotation to complete", ALL_DONE_TIMEOUT_MS, async () => {
      const rows = await sql<{ status: string; count: number }[]>`select status, count(*)::int as count from rotations group by status`;
      const byStatus = Object.fromEntries(rows.map((row) => [row.status, row.count]));
      return (byStatus["completed"] ?? 0) >= SECRET_COUNT && !byStatus["in_progress"] ? byStatus : undefined;
    });
    const elapsedMs = Date.now() - dueAt;
    expect(counts).toEqual({ completed: SECRET_COUNT });

    const perSecret = await sql<{ secret_id: string; rotations: number; completed: number }[]>`
      select secret_id, count(*)::int as rotations, count(*) filter (where status = 'completed')::int as completed
      from rotations group by secret_id`;
    expect(perSecret).toHaveLength(SECRET_COUNT);
    expect(perSecret.filter((row) => row.rotations !== 1 || row.completed !== 1)).toEqual([]);
    expect(new Set(perSecret.map((row) => row.secret_id))).toEqual(new Set(secretIds));

    const records = await sql<{ id: string; trigger: string; from_version: string; to_version: string; steps: { step: string; outcome: string }[]; claimed_by: string | null }[]>`
      select id, trigger, from_version, to_version, steps, claimed_by from rotations`;
    const stepsOf = (record: (typeof records)[number]) => record.steps.map((step) => `${step.step}:${step.outcome}`).join(",");
    expect(records.filter((record) => record.trigger !== "schedule")).toEqual([]);
    expect(records.filter((record) => record.from_version !== "1" || record.to_version !== "2")).toEqual([]);
    expect(records.filter((record) => record.claimed_by !== null)).toEqual([]);
    expect(records.filter((record) => stepsOf(record) !== "create:success,set:success,test:success,finish:success")).toEqual([]);

    const stages = await sql<{ secret_id: string; stages: Record<string, string> }[]>`
      select secret_id, jsonb_object_agg(version, stage) as stages from secret_versions group by secret_id`;
    expect(stages).toHaveLength(SECRET_COUNT);
    expect(stages.filter((row) => JSON.stringify(row.stages) !== JSON.stringify({ "1": "previous", "2": "current" }))).toEqual([]);

    const secretRows = await sql<{ current_version: string; rescheduled: boolean }[]>`
      select current_version, next_rotation_at > now() as rescheduled from secrets where name like 'rot/replicas-%'`;
    expect(secretRows.filter((row) => row.current_version !== "2")).toEqual([]);
    expect(secretRows.filter((row) => !row.rescheduled)).toEqual([]);
    // One API read of a secret, as a client sees it.
    expect(await versionStages(first.address, adminToken, secretIds[0]!)).toEqual({ "1": "previous", "2": "current" });

    const auditCounts = await sql<{ action: string; count: number }[]>`
      select action, count(*)::int as count from audit_events where action like 'rotation.%' group by action`;
    expect(Object.fromEntries(auditCounts.map((row) => [row.action, row.count]))).toEqual({
      "rotation.start": SECRET_COUNT,
      "rotation.step": 3 * SECRET_COUNT,
      "rotation.finish": SECRET_COUNT,
    });
    const verify = await expectStatus(200, replicas[1]!.address, adminToken, "GET", "/v1/audit/verify");
    expect(verify.valid).toBe(true);

    // How the work spread, from each process's `rotation tick finished` and `rotation completed` lines.
    const split = replicas.map((replica, index) => {
      const lines = logLines(replica);
      const ticks = lines.filter((line) => line["msg"] === "rotation tick finished");
      return {
        process: index + 1,
        pid: replica.pid,
        started: ticks.reduce((sum, line) => sum + Number(line["started"] ?? 0), 0),
        ran: ticks.reduce((sum, line) => sum + Number(line["ran"] ?? 0), 0),
        ticksWithWork: ticks.length,
        completedIds: lines.filter((line) => line["msg"] === "rotation completed").map((line) => String(line["rotationId"])),
        failures: lines.filter((line) => line["msg"] === "rotation step failed" || line["msg"] === "rotation tick failed" || String(line["msg"]).includes("claim lost")).length,
      };
    });
    console.info(
      `200 due secrets rotated by 3 processes in ${elapsedMs} ms:\n` +
        split.map((entry) => `  process ${entry.process} (pid ${entry.pid}): started ${entry.started}, ran ${entry.ran}, completed ${entry.completedIds.length}, ticks with work ${entry.ticksWithWork}, failures ${entry.failures}`).join("\n"),
    );
    expect(split.reduce((sum, entry) => sum + entry.ran, 0)).toBe(SECRET_COUNT);
    expect(split.reduce((sum, entry) => sum + entry.started, 0)).toBe(SECRET_COUNT);
    const completedIds = split.flatMap((entry) => entry.completedIds);
    expect(completedIds).toHaveLength(SECRET_COUNT);
    expect(new Set(completedIds)).toEqual(new Set(records.map((record) => record.id)));
    expect(split.map((entry) => entry.failures)).toEqual([0, 0, 0]);
  }, 120_000);

  it("SIGKILL before finish resumes after claim lapses", async () => {
    const { sql, settings } = await newBroker({ BROKER_ROTATION_SCHEDULE: EVERY_SECOND, BROKER_ROTATION_CLAIM_TTL: String(SHORT_CLAIM_TTL_SECONDS) });
    const doomed = await startReplica(settings);
    const issuer = doomed.address;
    const adminToken = await readAdminToken(doomed);
    const secret = await expectStatus(201, doomed.address, adminToken, "POST", "/v1/secrets", newSecretBody("rot/killed"));
    const workload = await registerWorkload(doomed.address, adminToken, secret.name);
    const before = await obtainCredential(doomed.address, issuer, workload, secret.name);
    expect(before.version).toBe("1");

    const lock = await lockCurrentVersion(sql, secret.id);
    locks.push(lock);
    const started = await expectStatus(202, doomed.address, adminToken, "POST", `/v1/secrets/${secret.id}/rotate`, { reason: "kill test" });
    await waitForLastStep(doomed.address, adminToken, started.id, "test");
    const blocked = await waitUntilBlocked(sql, lock);
    expect(blocked.query).toMatch(/update "secret_versions"/);

    expect(await doomed.stop("SIGKILL")).toBeNull();
    const killedAt = Date.now();
    await lock.release();
    // The killed process never sent COMMIT, so its backend rolls the finish step back and exits.
    await waitFor("the killed process's backend to exit", 10_000, async () => {
      const rows = await sql`select 1 from pg_stat_activity where pid = ${blocked.pid}`;
      return rows.length === 0 ? true : undefined;
    });

    const [left] = await sql<{ status: string; last_step: string; claimed_by: string; claim_expires_at: Date }[]>`
      select status, last_step, claimed_by, claim_expires_at from rotations where id = ${started.id}`;
    expect(left!.status).toBe("in_progress");
    expect(left!.last_step).toBe("test");
    expect(claimPid(left!.claimed_by)).toBe(doomed.pid);
    const stagesLeft = await sql<{ version: string; stage: string }[]>`select version, stage from secret_versions where secret_id = ${secret.id} order by version`;
    expect(stagesLeft.map((row) => `${row.version}:${row.stage}`)).toEqual(["1:current", "2:pending"]);
    const [secretLeft] = await sql<{ current_version: string }[]>`select current_version from secrets where id = ${secret.id}`;
    expect(secretLeft!.current_version).toBe("1");

    const successor = await startReplica(settings, issuer);
    const completed = await waitForStatus(successor.address, adminToken, started.id, "completed", 2 * SHORT_CLAIM_TTL_SECONDS * 1000);
    const resumedAfterKillMs = Date.now() - killedAt;
    const finishedAfterLapseMs = Date.parse(completed.finished_at) - left!.claim_expires_at.getTime();
    console.info(
      `SIGKILL recovery: claim lapsed ${left!.claim_expires_at.getTime() - killedAt} ms after the kill; ` +
        `the restarted process finished the rotation ${finishedAfterLapseMs} ms after the lapse, ${resumedAfterKillMs} ms after the kill`,
    );
    // The successor waited for the dead process's claim to lapse, then resumed within about one 1-second tick.
    expect(finishedAfterLapseMs).toBeGreaterThanOrEqual(0);
    expect(finishedAfterLapseMs).toBeLessThan(3_000);
    expect(completed.steps.map((step: { step: string; outcome: string }) => `${step.step}:${step.outcome}`)).toEqual(["create:success", "set:success", "test:success", "finish:success"]);
    expect(completionsLogged(successor, started.id)).toBe(1);

    expect(await versionStages(successor.address, adminToken, secret.id)).toEqual({ "1": "previous", "2": "current" });
    const current = await expectStatus(200, successor.address, adminToken, "GET", `/v1/secrets/${secret.id}`);
    expect(current.current_version).toBe("2");
    const finishEvents = await sql`select seq from audit_events where action = 'rotation.finish' and target = ${started.id}`;
    expect(finishEvents).toHaveLength(1);
    const verify = await expectStatus(200, successor.address, adminToken, "GET", "/v1/audit/verify");
    expect(verify.valid).toBe(true);

    const after = await obtainCredential(successor.address, issuer, workload, secret.name);
    expect(after.version).toBe("2");
    expect(after.data.value).not.toBe(before.data.value);
  }, 90_000);

  it("SIGTERM waits for blocked finish step", async () => {
    const { sql, settings } = await newBroker({ BROKER_ROTATION_SCHEDULE: EVERY_SECOND, BROKER_ROTATION_CLAIM_TTL: String(SHORT_CLAIM_TTL_SECONDS) });
    const first = await startReplica(settings);
    const second = await startReplica(settings, first.address);
    const adminToken = await readAdminToken(first);
    const secret = await expectStatus(201, first.address, adminToken, "POST", "/v1/secrets", newSecretBody("rot/terminated"));

    const lock = await lockCurrentVersion(sql, secret.id);
    locks.push(lock);
    const started = await expectStatus(202, first.address, adminToken, "POST", `/v1/secrets/${secret.id}/rotate`, { reason: "shutdown test" });
    await waitForLastStep(first.address, adminToken, started.id, "test");
    await waitUntilBlocked(sql, lock);

    // Either process may have claimed the rotation, so stop the one that runs it.
    const [claim] = await sql<{ claimed_by: string }[]>`select claimed_by from rotations where id = ${started.id}`;
    const runner = [first, second].find((replica) => replica.pid === claimPid(claim!.claimed_by))!;
    const other = runner === first ? second : first;
    expect(runner).toBeDefined();
    const signalledAt = Date.now();
    const exited = runner.stop("SIGTERM");
    await sleep(1_000);
    expect(runner.child.exitCode).toBeNull();
    await lock.release();
    const exitCode = await exited;
    const shutdownMs = Date.now() - signalledAt;
    expect(exitCode).toBe(0);

    const completed = await waitForStatus(other.address, adminToken, started.id, "completed", 2 * SHORT_CLAIM_TTL_SECONDS * 1000);
    const byRunner = completionsLogged(runner, started.id);
    const byOther = completionsLogged(other, started.id);
    const paused = logLines(runner).some((line) => line["msg"] === "rotation paused for shutdown; another process resumes it" && line["rotationId"] === started.id);
    console.info(
      `SIGTERM with the finish step blocked: exit code ${exitCode} after ${shutdownMs} ms; ` +
        (byRunner === 1 ? "the terminated process finished the step in flight" : `the rotation was ${paused ? "released" : "left"} and the other process completed it`),
    );
    expect(byRunner + byOther).toBe(1);
    expect(logLines(runner).some((line) => line["msg"] === "broker stopped")).toBe(true);
    expect(completed.steps.map((step: { step: string }) => step.step)).toEqual(["create", "set", "test", "finish"]);
    expect(await versionStages(other.address, adminToken, secret.id)).toEqual({ "1": "previous", "2": "current" });
    const verify = await expectStatus(200, other.address, adminToken, "GET", "/v1/audit/verify");
    expect(verify.valid).toBe(true);
  }, 60_000);
});
