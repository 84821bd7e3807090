import { parentPort, workerData } from "node:worker_threads";
import { openDatabase } from "../db/database.js";
import { writePackFiles } from "./evidence-export.js";
import type { PackWorkerData } from "./pack-worker.js";

/** Entry point of the export worker (see pack-worker.ts): writes the files and sends back their list. */
const { databaseUrl, request } = workerData as PackWorkerData;
const database = await openDatabase({ databaseUrl });
try {
  parentPort!.postMessage(await writePackFiles(database.db, request));
} finally {
  await database.close();
}
