import { randomBytes } from "node:crypto";
import type { AdapterCall, SecretKind, SecretRef } from "../../../adapters/contract.js";
import type { ValueSealer } from "../../../adapters/local/value-sealer.js";
import { VaultAdapter } from "../../../adapters/vault/vault-adapter.js";
import type { VaultTokenEvent } from "../../../adapters/vault/vault-session.js";
import { ManualClock } from "../../../broker/config/clock.js";
import type { AppRole } from "./token-store.js";
import { VaultStandin, type VaultStandinOptions } from "./vault-standin.js";

/** Where the stand-in's clock starts, the same frozen time as the test broker's. */
export const STANDIN_NOW = "2026-06-01T12:00:00.000Z";
export const TOKEN_SECRET = "vault/broker-token";
export const SECRET_ID_SECRET = "vault/broker-approle";

/** A started stand-in, an AppRole and a token for the broker, and the log lines and token events an adapter produced. */
export interface VaultFixture {
  standin: VaultStandin;
  clock: ManualClock;
  appRole: AppRole;
  /** A token without expiry, with sudo, for token auth. */
  rootToken: string;
  logs: string[];
  tokenEvents: VaultTokenEvent[];
  /** Settings with AppRole auth, `extra` merged in at the top level. */
  settings(extra: Record<string, unknown>, auth?: "approle" | "token"): Record<string, unknown>;
  /** Local secrets by name, as `readLocalSecret` returns them. */
  localSecrets: Map<string, Record<string, string>>;
  call(kind: SecretKind, settings: Record<string, unknown>, fields?: Partial<SecretRef>): AdapterCall;
  adapter(): VaultAdapter;
  stop(): Promise<void>;
}

/** Seals by base64 with the context prefixed; enough to check that the adapter round-trips its copies. */
export const testSealer: ValueSealer = {
  seal: async (plaintext, context) => Buffer.concat([Buffer.from(`${context}|`), plaintext]).toString("base64"),
  open: async (envelope, context) => {
    const bytes = Buffer.from(envelope, "base64");
    const prefix = Buffer.from(`${context}|`);
    if (!bytes.subarray(0, prefix.length).equals(prefix)) throw new Error("context differs");
    return bytes.subarray(prefix.length);
  },
};

export async function startVaultFixture(options: VaultStandinOptions & { clock?: ManualClock } = {}): Promise<VaultFixture> {
  const clock = options.clock ?? new ManualClock(STANDIN_NOW);
  const standin = new VaultStandin({ ...options, clock });
  await standin.start();
  const appRole = standin.tokens.addAppRole({ tokenTtl: 3600, tokenMaxTtl: 4 * 3600 });
  const rootToken = standin.tokens.addToken().id;
  standin.database.addRole("readonly", { defaultTtl: 3600, maxTtl: 2 * 3600 });
  standin.database.addStaticRole("orders-app", "orders_app");
  const logs: string[] = [];
  const tokenEvents: VaultTokenEvent[] = [];
  const localSecrets = new Map<string, Record<string, string>>([
    [TOKEN_SECRET, { token: rootToken }],
    [SECRET_ID_SECRET, { secret_id: appRole.secretId }],
  ]);
  const adapters: VaultAdapter[] = [];

  const settings = (extra: Record<string, unknown>, auth: "approle" | "token" = "approle") => ({
    connection: { address: standin.address, timeout_seconds: 5 },
    auth: auth === "approle" ? { method: "approle", role_id: appRole.roleId, secret_id_secret: SECRET_ID_SECRET } : { method: "token", token_secret: TOKEN_SECRET },
    ...extra,
  });

  const call = (kind: SecretKind, raw: Record<string, unknown>, fields: Partial<SecretRef> = {}): AdapterCall => ({
    secret: { id: `sec_${randomBytes(12).toString("hex")}`, name: "test/vault-secret", kind, settings: raw, generate: null, ...fields },
    signal: new AbortController().signal,
    readLocalSecret: async (name) => {
      const stored = localSecrets.get(name);
      if (!stored) throw new Error(`no local secret ${name}`);
      return stored;
    },
  });

  const adapter = () => {
    const created = new VaultAdapter({
      sealer: testSealer,
      now: () => clock.now(),
      logger: { info: (object: unknown, message?: string) => void logs.push(JSON.stringify({ object, message })), warn: (object: unknown, message?: string) => void logs.push(JSON.stringify({ object, message })) } as never,
      onTokenEvent: (event) => tokenEvents.push(event),
    });
    adapters.push(created);
    return created;
  };

  return {
    standin,
    clock,
    appRole,
    rootToken,
    logs,
    tokenEvents,
    settings,
    localSecrets,
    call,
    adapter,
    stop: async () => {
      await Promise.all(adapters.map((created) => created.close()));
      await standin.stop();
    },
  };
}
