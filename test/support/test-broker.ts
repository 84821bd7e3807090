import { AuditChainer } from "../../broker/audit/audit-chainer.js";
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { sql } from "drizzle-orm";
import { pino } from "pino";
import type { SecretAdapter } from "../../adapters/contract.js";
import { createOperatorToken } from "../../broker/auth/operator-tokens.js";
import type { Role } from "../../broker/auth/roles.js";
import type { BrokerConfig } from "../../broker/config/config.js";
import { ManualClock } from "../../broker/config/clock.js";
import { DataKeyRing } from "../../broker/crypto/data-key-ring.js";
import { MasterKeyRing } from "../../broker/crypto/master-key-ring.js";
import { type Database, rowsOf } from "../../broker/db/database.js";
import { shippedMigrationCount } from "../../broker/db/migrations-info.js";
import type { BrokerDeps } from "../../broker/deps.js";
import { createApp } from "../../broker/http/app.js";
import type { BrokerApp } from "../../broker/http/route-helpers.js";
import { REDACTED_PATHS } from "../../broker/logging/logger.js";
import { createMetrics } from "../../broker/metrics/metrics.js";
import { initializeBroker } from "../../broker/setup/initialize.js";
import { keyRetentionSeconds } from "../../broker/tokens/key-rotation.js";
import { SigningKeyRing } from "../../broker/tokens/signing-key-ring.js";
import { createAdapterRegistry } from "../../broker/secrets/builtin-adapters.js";
import { JwksCache } from "../../broker/tokens/subject-token.js";
import { openTestDatabase } from "./test-database.js";

/** The frozen time every test broker starts at, unless a test moves its clock. */
export const TEST_NOW = "2026-06-01T12:00:00.000Z";

export interface TestBroker {
  app: BrokerApp;
  deps: BrokerDeps;
  /** The broker's database; `url` is set when it is a scratch database on the DATABASE_URL server. */
  database: Database & { url: string | undefined };
  clock: ManualClock;
  tokens: Record<Role, string>;
  /** Every log line written so far, as raw JSON text. */
  logs: string[];
  request(method: string, path: string, options?: RequestOptions): Promise<TestResponse>;
  query<T = Record<string, unknown>>(text: string): Promise<T[]>;
  close(): Promise<void>;
}

export interface RequestOptions {
  token?: string | null;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
}

export interface TestResponse {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

export function testConfig(overrides: Partial<BrokerConfig> = {}): BrokerConfig {
  return {
    host: "127.0.0.1",
    port: 0,
    dataDir: "/nonexistent",
    databaseUrl: undefined,
    issuer: "http://127.0.0.1:8080",
    masterKey: undefined,
    logLevel: "debug",
    bodyLimitBytes: 64 * 1024,
    shutdownGraceMs: 1000,
    signingAlgorithm: "ES256",
    tokenTtlCap: 900,
    leaseMaxTtl: 3600,
    clockSkew: 30,
    keyPublishDelay: 600,
    maxSubjectTokenAge: 86_400,
    sweepSchedule: "*/15 * * * * *",
    adapterTimeoutMs: 10_000,
    rotationSchedule: "*/10 * * * * *",
    rotationClaimTtlMs: 60_000,
    reviewOverdueAction: "warn",
    reviewGraceDays: 14,
    reviewCheckSchedule: "0 */10 * * * *",
    privilegedTokenTtlCap: 900,
    unusedAccountDays: 90,
    ...overrides,
  };
}

/**
 * Builds a broker on a fresh database with an admin, an operator and an auditor token.
 * `masterKeys` defaults to one random key, as if given by BROKER_MASTER_KEY.
 */
export interface TestBrokerOptions {
  config?: Partial<BrokerConfig>;
  masterKeys?: MasterKeyRing;
  /** Adapters registered besides the built-in ones. */
  adapters?: SecretAdapter[];
  /** Where the clock starts; TEST_NOW by default. */
  now?: string;
}

export async function startTestBroker(options: TestBrokerOptions = {}): Promise<TestBroker> {
  const database = await openTestDatabase();
  const clock = new ManualClock(options.now ?? TEST_NOW);
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, callback) {
      logs.push(String(chunk));
      callback();
    },
  });
  const log = pino({ level: "debug", redact: { paths: REDACTED_PATHS, censor: "[redacted]" } }, sink);
  const masterKeys = options.masterKeys ?? new MasterKeyRing([randomBytes(32)], "environment");
  const config = testConfig(options.config);
  const metrics = createMetrics({ processMetrics: false });
  const auditChain = new AuditChainer({ db: database.db, log });
  const dataKeys = new DataKeyRing({ db: database.db, clock, masterKeys, log, onAppended: () => auditChain.wake() });
  const deps: BrokerDeps = {
    db: database.db,
    clock,
    log,
    metrics,
    config,
    expectedMigrations: shippedMigrationCount(),
    keyRing: new SigningKeyRing(database.db, clock, masterKeys, keyRetentionSeconds(config)),
    masterKeys,
    dataKeys,
    auditChain,
    jwks: new JwksCache(),
    adapters: createAdapterRegistry({ config, dataKeys, log, metrics, clock }, options.adapters),
  };

  const system = { actor: "system", role: null, requestId: null, sourceAddress: null };
  const { adminToken } = await initializeBroker(deps, masterKeys, system);
  const extra = await deps.db.transaction(async (tx) => ({
    operator: (await createOperatorToken(tx, clock, { role: "operator", name: "test-operator", expiresAt: null, createdBy: "test" })).token,
    auditor: (await createOperatorToken(tx, clock, { role: "auditor", name: "test-auditor", expiresAt: null, createdBy: "test" })).token,
  }));
  const tokens: Record<Role, string> = { admin: adminToken, ...extra };
  const app = createApp(deps);

  return {
    app,
    deps,
    database,
    clock,
    tokens,
    logs,
    request: (method, path, requestOptions = {}) => send(app, tokens.admin, method, path, requestOptions),
    query: async (text) => rowsOf(await database.db.execute(sql.raw(text))),
    close: async () => {
      await deps.adapters.close();
      await auditChain.stop();
      await database.close();
    },
  };
}

/** Sends a request to an app in process, with `defaultToken` unless `options.token` is given (null for none). */
export async function send(app: BrokerApp, defaultToken: string, method: string, path: string, options: RequestOptions): Promise<TestResponse> {
  const headers: Record<string, string> = { ...options.headers };
  const token = options.token === undefined ? defaultToken : options.token;
  if (token) {
    headers["authorization"] = `Bearer ${token}`;
  }
  let body: string | undefined;
  if (options.rawBody !== undefined) {
    body = options.rawBody;
  } else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers["content-type"] ??= "application/json";
  }
  if (body !== undefined) {
    headers["content-length"] ??= String(Buffer.byteLength(body));
  }

  const response = await app.request(path, { method, headers, body });
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}
