import { randomBytes } from "node:crypto";

/** Every role this adapter creates starts with `sb_`, then the prefix, then 16 hex digits. */
const ROLE_NAME_START = "sb";
export const DEFAULT_NAME_PREFIX = "dyn";
/** Random part of a role name: 8 bytes (64 bits) as 16 lowercase hex digits. */
const ROLE_NAME_RANDOM_BYTES = 8;
/**
 * The names renew and revoke act on. Anything else is refused, so that a wrong upstream
 * lease id can never alter or drop a role this adapter did not create.
 */
export const DYNAMIC_ROLE_NAME = /^sb_[a-z0-9_]+_[0-9a-f]{16}$/;
const MAX_ROLE_NAME_BYTES = 63;

/** Password characters: letters and digits only, so that the value needs no quoting anywhere. */
const PASSWORD_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/** 40 characters of 62 symbols: about 238 bits. */
export const PASSWORD_LENGTH = 40;
/** Bytes at or above this value are dropped, so that `byte % 62` is uniform (248 = 4 * 62). */
const UNBIASED_BYTE_LIMIT = 256 - (256 % PASSWORD_ALPHABET.length);

/** Makes a new role name such as `sb_orders_3f9a0c1d2e4b5a69`; `namePrefix` must match the settings pattern. */
export function newRoleName(namePrefix: string | undefined): string {
  return `${ROLE_NAME_START}_${namePrefix ?? DEFAULT_NAME_PREFIX}_${randomBytes(ROLE_NAME_RANDOM_BYTES).toString("hex")}`;
}

export function isDynamicRoleName(name: string): boolean {
  return name.length <= MAX_ROLE_NAME_BYTES && DYNAMIC_ROLE_NAME.test(name);
}

/** Makes a random password of PASSWORD_LENGTH characters from [A-Za-z0-9], drawn without modulo bias. */
export function newPassword(): string {
  let password = "";
  while (password.length < PASSWORD_LENGTH) {
    for (const byte of randomBytes(PASSWORD_LENGTH)) {
      if (byte < UNBIASED_BYTE_LIMIT && password.length < PASSWORD_LENGTH) {
        password += PASSWORD_ALPHABET[byte % PASSWORD_ALPHABET.length];
      }
    }
  }
  return password;
}
