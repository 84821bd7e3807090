import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newScramVerifier, SCRAM_ITERATIONS, scramSha256Verifier } from "../../adapters/postgres/scram-verifier.js";
import { TEST_POSTGRES_URL } from "../support/postgres-fixture.js";

const SCRAM_SECRET = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/;

describe("scram verifier", () => {
  it("has PostgreSQL's stored form", async () => {
    const verifier = await newScramVerifier("Password123");
    const [, iterations, salt] = SCRAM_SECRET.exec(verifier) ?? [];

    expect(verifier).toMatch(SCRAM_SECRET);
    expect(Number(iterations)).toBe(SCRAM_ITERATIONS);
    expect(Buffer.from(salt!, "base64")).toHaveLength(16);
  });

  it("new salt per verifier", async () => {
    expect(await newScramVerifier("Password123")).not.toBe(await newScramVerifier("Password123"));
  });

  it.each(["", "pässword", "tab\tword", "new\nline", "nul\u0000byte", "del\u007fete", "non\u00a0breaking"])("password %j rejected", async (password) => {
    await expect(scramSha256Verifier(password, randomBytes(16))).rejects.toBeInstanceOf(RangeError);
  });

  it.each(["pass word", "pass'word", "pass\\word", "~!@#$%^&*()_+{}|:\"<>?`-=[];,./"])("printable ASCII %j accepted", async (password) => {
    await expect(scramSha256Verifier(password, randomBytes(16))).resolves.toMatch(SCRAM_SECRET);
  });
});

describe.skipIf(!TEST_POSTGRES_URL)("scram verifier against server", () => {
  let sql: postgres.Sql;
  const role = `sbt_scram_${randomBytes(4).toString("hex")}`;

  beforeAll(() => {
    sql = postgres(TEST_POSTGRES_URL!, { max: 1, onnotice: () => undefined });
  });

  afterAll(async () => {
    await sql?.unsafe(`drop role if exists ${role}`);
    await sql?.end();
  });

  it.each([
    ["hex", randomBytes(24).toString("hex")],
    ["every printable ASCII character", Array.from({ length: 0x7f - 0x20 }, (_, index) => String.fromCharCode(0x20 + index)).join("")],
  ])("matches secret the server computes: %s", async (_label, password) => {
    await sql.unsafe(`set password_encryption = 'scram-sha-256'`);
    await sql.unsafe(`drop role if exists ${role}`);
    // With standard_conforming_strings on, only the quote needs doubling inside the literal.
    await sql.unsafe(`create role ${role} nologin password '${password.replaceAll("'", "''")}'`);

    const [row] = await sql<{ rolpassword: string }[]>`select rolpassword from pg_authid where rolname = ${role}`;
    const [, iterations, salt] = SCRAM_SECRET.exec(row!.rolpassword) ?? [];

    expect(await scramSha256Verifier(password, Buffer.from(salt!, "base64"), Number(iterations))).toBe(row!.rolpassword);
  });
});
