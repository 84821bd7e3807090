import { asc, eq, gt } from "drizzle-orm";
import type { RecordAudit } from "../audit/audit-writer.js";
import type { Clock } from "../config/clock.js";
import type { Executor } from "../db/database.js";
import { newId } from "../db/ids.js";
import { applications } from "../db/schema.js";
import { Conflict, NotFound } from "../errors.js";
import type { ApplicationCreateInput, ApplicationUpdateInput, ApplicationView } from "./register-schemas.js";

type ApplicationRow = typeof applications.$inferSelect;

export async function createApplication(
  tx: Executor,
  clock: Clock,
  record: RecordAudit,
  input: ApplicationCreateInput,
): Promise<ApplicationView> {
  await ensureApplicationNameFree(tx, input.name);
  const now = clock.now();
  const [row] = await tx
    .insert(applications)
    .values({
      id: newId("app"),
      name: input.name,
      technicalOwner: input.technical_owner,
      businessOwner: input.business_owner ?? null,
      criticality: input.criticality,
      regulated: input.regulated,
      createdAt: now,
      updatedAt: now,
    })
    .returning();

  record({ action: "application.create", target: row!.id, details: { name: row!.name } });
  return toApplicationView(row!);
}

export async function getApplication(db: Executor, id: string): Promise<ApplicationView> {
  return toApplicationView(await findApplication(db, id));
}

export async function findApplication(db: Executor, id: string): Promise<ApplicationRow> {
  const [row] = await db.select().from(applications).where(eq(applications.id, id));
  if (!row) {
    throw new NotFound("application", id);
  }
  return row;
}

export async function listApplications(db: Executor, cursor: string | undefined, limit: number): Promise<ApplicationView[]> {
  const rows = await db
    .select()
    .from(applications)
    .where(cursor ? gt(applications.id, cursor) : undefined)
    .orderBy(asc(applications.id))
    .limit(limit);
  return rows.map(toApplicationView);
}

export async function updateApplication(
  tx: Executor,
  clock: Clock,
  record: RecordAudit,
  id: string,
  input: ApplicationUpdateInput,
): Promise<ApplicationView> {
  await findApplication(tx, id);
  const [row] = await tx
    .update(applications)
    .set({
      technicalOwner: input.technical_owner,
      businessOwner: input.business_owner,
      criticality: input.criticality,
      regulated: input.regulated,
      updatedAt: clock.now(),
    })
    .where(eq(applications.id, id))
    .returning();

  record({ action: "application.update", target: id, details: { fields: Object.keys(input).sort() } });
  return toApplicationView(row!);
}

async function ensureApplicationNameFree(tx: Executor, name: string): Promise<void> {
  const [existing] = await tx.select({ id: applications.id }).from(applications).where(eq(applications.name, name));
  if (existing) {
    throw new Conflict(`an application named '${name}' already exists (${existing.id}); choose another name`);
  }
}

export function toApplicationView(row: ApplicationRow): ApplicationView {
  return {
    id: row.id,
    name: row.name,
    technical_owner: row.technicalOwner,
    business_owner: row.businessOwner,
    criticality: row.criticality as ApplicationView["criticality"],
    regulated: row.regulated,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}
