import { createHash, createHmac, pbkdf2, randomBytes } from "node:crypto";
import { promisify } from "node:util";

const pbkdf2Async = promisify(pbkdf2);

/** PostgreSQL's defaults for stored SCRAM secrets: 4096 iterations, a 16-byte salt. */
export const SCRAM_ITERATIONS = 4096;
const SCRAM_SALT_BYTES = 16;
const SHA256_BYTES = 32;
/**
 * Printable ASCII, space included. SASLprep (RFC 4013) changes or prohibits only control
 * characters and non-ASCII characters, so it leaves these passwords unchanged.
 */
export const SASLPREP_NEUTRAL_PASSWORD = /^[\x20-\x7e]+$/;

/**
 * Computes the SCRAM-SHA-256 secret that PostgreSQL stores in pg_authid.rolpassword
 * (RFC 5802 section 3, RFC 7677), in its text form
 * `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` with base64 parts.
 * CREATE ROLE and ALTER ROLE ... PASSWORD accept this form and store it as is, so the
 * clear password never reaches the server, its logs or pg_stat_activity. Accepts only
 * printable ASCII passwords, for which SASLprep is the identity.
 */
export async function scramSha256Verifier(password: string, salt: Buffer, iterations = SCRAM_ITERATIONS): Promise<string> {
  if (!SASLPREP_NEUTRAL_PASSWORD.test(password)) {
    throw new RangeError("scramSha256Verifier accepts only non-empty passwords of printable ASCII characters");
  }

  const saltedPassword = await pbkdf2Async(password, salt, iterations, SHA256_BYTES, "sha256");
  const clientKey = createHmac("sha256", saltedPassword).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", saltedPassword).update("Server Key").digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

/** Computes a SCRAM-SHA-256 secret for `password` with a new random salt. */
export function newScramVerifier(password: string): Promise<string> {
  return scramSha256Verifier(password, randomBytes(SCRAM_SALT_BYTES));
}
