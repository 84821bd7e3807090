import { z } from "@hono/zod-openapi";
import type { rotations } from "../db/schema.js";

export type RotationRow = typeof rotations.$inferSelect;

/** The four steps of a staged rotation, in order (AWS Secrets Manager's createSecret, setSecret, testSecret, finishSecret). */
export const ROTATION_STEPS = ["create", "set", "test", "finish"] as const;
export type RotationStep = (typeof ROTATION_STEPS)[number];
export const ROTATION_TRIGGERS = ["schedule", "manual", "compromise"] as const;
export type RotationTrigger = (typeof ROTATION_TRIGGERS)[number];
export const ROTATION_STATUSES = ["in_progress", "completed", "rolled_back"] as const;

/** Returns the step after `last`, or undefined when every step is done. */
export function nextStep(last: string | null): RotationStep | undefined {
  if (last === null) {
    return ROTATION_STEPS[0];
  }
  return ROTATION_STEPS[ROTATION_STEPS.indexOf(last as RotationStep) + 1];
}

export const Rotation = z
  .object({
    id: z.string(),
    secret_id: z.string(),
    trigger: z.enum(ROTATION_TRIGGERS),
    reason: z.string().nullable(),
    actor: z.string(),
    status: z.enum(ROTATION_STATUSES),
    last_step: z.string().nullable().openapi({ description: "The last step completed: create, set, test or finish." }),
    steps: z.array(
      z.object({ step: z.string(), started_at: z.string(), finished_at: z.string(), outcome: z.enum(["success", "failure"]), error: z.string().optional() }),
    ),
    from_version: z.string().nullable(),
    to_version: z.string().nullable(),
    failed_step: z.string().nullable(),
    error: z.string().nullable(),
    attempts: z.number().int(),
    created_at: z.string(),
    updated_at: z.string(),
    finished_at: z.string().nullable(),
  })
  .openapi("Rotation");

export type RotationView = z.infer<typeof Rotation>;

export function toRotationView(row: RotationRow): RotationView {
  return {
    id: row.id,
    secret_id: row.secretId,
    trigger: row.trigger as RotationView["trigger"],
    reason: row.reason,
    actor: row.actor,
    status: row.status as RotationView["status"],
    last_step: row.lastStep,
    steps: row.steps,
    from_version: row.fromVersion,
    to_version: row.toVersion,
    failed_step: row.failedStep,
    error: row.error,
    attempts: row.attempts,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
    finished_at: row.finishedAt?.toISOString() ?? null,
  };
}
