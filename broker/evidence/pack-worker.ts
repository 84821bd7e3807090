import { Worker } from "node:worker_threads";
import type { PackRequest, WrittenPack } from "./evidence-export.js";

/**
 * Old-space limit of the export worker, in MiB. Under the default limit, which Node.js
 * sizes from the machine's memory, V8 let an export's heap grow to about four times its
 * live size before a full collection. Under this one, it collected at about twice the
 * live size (Node.js 20, see docs/benchmarks.md). A streamed export keeps a few MiB
 * alive, so a large register or findings list still fits. An export that outgrows the
 * limit fails with ERR_WORKER_OUT_OF_MEMORY, and the broker keeps running.
 */
const WORKER_OLD_SPACE_MIB = 256;

const WORKER_ENTRY = new URL("./pack-worker-entry.js", import.meta.url);

/** Input of the export worker: the database to connect to, and the pack to write. */
export interface PackWorkerData {
  databaseUrl: string;
  request: PackRequest;
}

/**
 * Writes the pack's files in a worker thread on a connection of its own to
 * `databaseUrl`. The worker's heap is capped, so V8 collects the export's garbage there
 * early instead of letting it pile up in the broker's heap.
 */
export function writePackFilesInWorker(databaseUrl: string, request: PackRequest): Promise<WrittenPack> {
  const workerData: PackWorkerData = { databaseUrl, request };
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_ENTRY, { workerData, resourceLimits: { maxOldGenerationSizeMb: WORKER_OLD_SPACE_MIB } });
    worker.once("message", resolve);
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`the evidence export worker exited with code ${code} before it sent its files`)));
  });
}
