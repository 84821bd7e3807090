import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { z } from "@hono/zod-openapi";
import { create as createTar } from "tar";
import type { BrokerDeps } from "../deps.js";
import { Rfc3339 } from "../http/common-schemas.js";
import { type BrokerApp, operatorRoute } from "../http/route-helpers.js";
import { loggableError } from "../logging/logger.js";
import { writeEvidencePack } from "./evidence-export.js";
import { MANIFEST_FILE, SIGNATURE_FILE } from "./evidence-manifest.js";

const EvidenceQuery = z
  .strictObject({
    from: Rfc3339.optional().openapi({ description: "Start of the activity window (lineage, rotations, audit events); the first record when absent." }),
    to: Rfc3339.optional().openapi({ description: "End of the activity window; now when absent." }),
  })
  .refine((query) => query.from === undefined || query.to === undefined || Date.parse(query.from) < Date.parse(query.to), {
    message: "must be later than from",
    path: ["to"],
  });

export function registerEvidenceRoutes(app: BrokerApp, deps: BrokerDeps): void {
  const log = deps.log.child({ module: "evidence" });

  app.openapi(
    operatorRoute(deps, "auditor", {
      method: "get",
      path: "/v1/evidence",
      tags: ["evidence"],
      summary: "Export a signed evidence pack as a gzip-compressed tar archive",
      description:
        "The register, privileged inventory, supplier access, grants, rotations and lineage as CSV and NDJSON; the audit chain " +
        "segment and the authentication and authorization events of the window; controls.json, controls.md and OSCAL " +
        `assessment results; and ${MANIFEST_FILE} with the SHA-256 of every file, signed by the broker's signing key in ${SIGNATURE_FILE}. ` +
        "Check it with `secrets-broker evidence verify DIR`.",
      request: { query: EvidenceQuery },
      responses: { 200: { description: "The evidence pack", content: { "application/gzip": { schema: z.string().openapi({ format: "binary" }) } } } },
    }),
    async (c) => {
      const query = c.req.valid("query");
      await deps.auditChain.flush();
      const now = deps.clock.now();
      const window = { from: query.from ? new Date(query.from) : undefined, to: query.to ? new Date(query.to) : now };
      const dir = await mkdtemp(path.join(tmpdir(), "secrets-broker-evidence-"));
      const cleanup = () => rm(dir, { recursive: true, force: true }).catch((error: unknown) => log.error({ err: loggableError(error), dir }, "failed to remove an evidence directory"));

      let manifest;
      try {
        manifest = await writeEvidencePack({ db: deps.db, keyRing: deps.keyRing, issuer: deps.config.issuer, config: deps.config, databaseUrl: deps.config.databaseUrl }, dir, window, now);
      } catch (error) {
        await cleanup();
        throw error;
      }
      log.info({ requestId: c.get("requestId"), files: manifest.files.length, auditEvents: manifest.audit_segment.events }, "evidence pack exported");

      const names = [...manifest.files.map((file) => file.path), MANIFEST_FILE, SIGNATURE_FILE];
      const archive = Readable.from(createTar({ gzip: true, cwd: dir, portable: true }, names));
      archive.once("close", () => void cleanup());
      const fileName = `evidence-${now.toISOString().replaceAll(":", "").replace(/\.\d+Z$/, "Z")}.tar.gz`;
      return c.body(Readable.toWeb(archive) as ReadableStream, 200, {
        "Content-Type": "application/gzip",
        "Content-Disposition": `attachment; filename="${fileName}"`,
        "Cache-Control": "no-store",
      }) as never;
    },
  );
}
