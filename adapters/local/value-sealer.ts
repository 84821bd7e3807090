/**
 * Encryption of the values that the broker stores for the local adapter. The broker
 * implements it with its data keys, and the adapter depends on nothing else of the broker.
 */
export interface ValueSealer {
  /** Encrypts with AES-256-GCM under the active data key; `context` is bound as AAD. */
  seal(plaintext: Buffer, context: string): Promise<string>;
  /**
   * Decrypts what seal produced; throws when the key, the context or any byte differs.
   * Those failures, which retrying cannot fix, are `SealedValueRejected`; any other error
   * (the database, a missing master key) is the sealer's own failure.
   */
  open(envelope: string, context: string): Promise<Buffer>;
}

export type SealedValueRejection = "malformed" | "unknown_key" | "integrity_check_failed";

/**
 * A sealed value that will never open: malformed, naming a data key that does not exist,
 * or altered (a changed byte, or moved to another record so that its context differs).
 * The message names no value, key or ciphertext.
 */
export class SealedValueRejected extends Error {
  override name = "SealedValueRejected";

  constructor(
    readonly reason: SealedValueRejection,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
