export interface StreamHooks {
  onEnd(): void;
  onCancel(): void;
  onError(error: unknown): void;
}

/**
 * Turns text chunks into a response body that stays at most one chunk ahead of what
 * the client has read, so a slow client never makes the broker buffer pages. An error
 * errors the stream, and the server then aborts the response instead of ending it
 * normally, so the client can tell a cut-off export from a complete one. A client that
 * disconnects cancels the stream, which stops the paging queries.
 */
export function streamChunks(first: IteratorResult<string>, rest: AsyncGenerator<string>, hooks: StreamHooks): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let pending: IteratorResult<string> | undefined = first;

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = pending ?? (await rest.next());
        pending = undefined;
        if (next.done) {
          hooks.onEnd();
          controller.close();
          return;
        }
        controller.enqueue(encoder.encode(next.value));
      } catch (error) {
        hooks.onError(error);
        controller.error(error);
      }
    },
    async cancel() {
      hooks.onCancel();
      await rest.return(undefined);
    },
  });
}
