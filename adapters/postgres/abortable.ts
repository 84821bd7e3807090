import type postgres from "postgres";

/** The call's AbortSignal fired before the work finished; mapped to `UpstreamTimeout`. */
export class CallAborted extends Error {
  override name = "CallAborted";
}

/**
 * Settles with `work`, or rejects with `CallAborted` as soon as `signal` fires, calling
 * `onAbort` first. The work itself keeps running unless `onAbort` stops it.
 */
export function raceAbort<T>(signal: AbortSignal, work: PromiseLike<T>, onAbort?: () => void): Promise<T> {
  if (signal.aborted) {
    return Promise.reject(new CallAborted("the call was aborted before it started", { cause: signal.reason }));
  }

  return new Promise<T>((resolve, reject) => {
    const abort = () => {
      onAbort?.();
      reject(new CallAborted("the call was aborted at its timeout", { cause: signal.reason }));
    };
    signal.addEventListener("abort", abort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", abort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", abort);
        reject(error);
      },
    );
  });
}

/**
 * Runs one query, racing it against `signal`. On abort the server is asked to cancel
 * the statement, so that it releases its locks and its transaction rolls back.
 * A query is lazy in postgres.js, so a pre-aborted signal means it never starts.
 */
export function runQuery<T extends readonly postgres.MaybeRow[]>(
  signal: AbortSignal,
  query: postgres.PendingQuery<T>,
): Promise<postgres.RowList<T>> {
  return raceAbort(signal, query, () => {
    // The call fails with a timeout either way; when the cancel request fails too,
    // the statement runs to its end on the server.
    Promise.resolve(query.cancel()).catch(() => undefined);
  });
}
