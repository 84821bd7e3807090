CREATE TABLE "rotations" (
	"id" text PRIMARY KEY NOT NULL,
	"secret_id" text NOT NULL,
	"trigger" text NOT NULL,
	"reason" text,
	"actor" text NOT NULL,
	"status" text NOT NULL,
	"last_step" text,
	"steps" jsonb NOT NULL,
	"from_version" text,
	"to_version" text,
	"failed_step" text,
	"error" text,
	"attempts" integer DEFAULT 0 NOT NULL,
	"claimed_by" text,
	"claim_expires_at" timestamp with time zone,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"finished_at" timestamp with time zone,
	CONSTRAINT "rotations_trigger_check" CHECK ("rotations"."trigger" in ('schedule', 'manual', 'compromise')),
	CONSTRAINT "rotations_status_check" CHECK ("rotations"."status" in ('in_progress', 'completed', 'rolled_back'))
);
--> statement-breakpoint
ALTER TABLE "secrets" ADD COLUMN "next_rotation_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "secrets" ADD COLUMN "last_rotated_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "rotations" ADD CONSTRAINT "rotations_secret_id_secrets_id_fk" FOREIGN KEY ("secret_id") REFERENCES "public"."secrets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "rotations_one_in_progress_idx" ON "rotations" USING btree ("secret_id") WHERE "rotations"."status" = 'in_progress';--> statement-breakpoint
CREATE INDEX "rotations_secret_idx" ON "rotations" USING btree ("secret_id","created_at");--> statement-breakpoint
CREATE INDEX "rotations_runnable_idx" ON "rotations" USING btree ("claim_expires_at") WHERE "rotations"."status" = 'in_progress';--> statement-breakpoint
CREATE INDEX "secrets_next_rotation_idx" ON "secrets" USING btree ("next_rotation_at") WHERE "secrets"."deleted_at" is null and "secrets"."next_rotation_at" is not null;