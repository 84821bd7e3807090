/** Exit codes: 0 success, 1 failure, 2 usage error. */
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A failure to report on standard error; `problem` is the broker's problem document when there is one. */
export class CliError extends Error {
  override name = "CliError";

  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
    readonly problem?: Record<string, unknown>,
  ) {
    super(message);
  }
}

export class UsageError extends CliError {
  override name = "UsageError";

  constructor(message: string) {
    super(message, EXIT_USAGE);
  }
}
