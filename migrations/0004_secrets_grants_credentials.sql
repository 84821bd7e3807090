CREATE TABLE "data_keys" (
	"id" text PRIMARY KEY NOT NULL,
	"purpose" text NOT NULL,
	"wrapped_key" text NOT NULL,
	"master_key_id" text NOT NULL,
	"status" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"rewrapped_at" timestamp with time zone,
	CONSTRAINT "data_keys_purpose_check" CHECK ("data_keys"."purpose" in ('value', 'fingerprint')),
	CONSTRAINT "data_keys_status_check" CHECK ("data_keys"."status" in ('active', 'retired'))
);
--> statement-breakpoint
CREATE TABLE "grants" (
	"id" text PRIMARY KEY NOT NULL,
	"service_account_id" text NOT NULL,
	"secret_id" text,
	"audience" text,
	"scopes" text[] NOT NULL,
	"max_ttl" integer,
	"not_before" timestamp with time zone,
	"not_after" timestamp with time zone,
	"approved_by" text,
	"justification" text,
	"created_at" timestamp with time zone NOT NULL,
	"created_by" text NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"revoked_at" timestamp with time zone,
	"revoked_by" text,
	"revoke_reason" text,
	CONSTRAINT "grants_target_check" CHECK (("grants"."secret_id" is null) <> ("grants"."audience" is null))
);
--> statement-breakpoint
CREATE TABLE "secret_versions" (
	"secret_id" text NOT NULL,
	"version" text NOT NULL,
	"stage" text NOT NULL,
	"fingerprint" text,
	"sealed_value" text,
	"rotation_id" text,
	"created_at" timestamp with time zone NOT NULL,
	"created_by" text NOT NULL,
	"promoted_at" timestamp with time zone,
	"retired_at" timestamp with time zone,
	CONSTRAINT "secret_versions_secret_id_version_pk" PRIMARY KEY("secret_id","version"),
	CONSTRAINT "secret_versions_stage_check" CHECK ("secret_versions"."stage" in ('pending', 'current', 'previous', 'deprecated'))
);
--> statement-breakpoint
CREATE TABLE "secrets" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"adapter" text NOT NULL,
	"kind" text NOT NULL,
	"owner" text NOT NULL,
	"description" text,
	"settings" jsonb NOT NULL,
	"generate" jsonb,
	"rotation" jsonb,
	"default_ttl" integer NOT NULL,
	"max_ttl" integer NOT NULL,
	"current_version" text,
	"created_at" timestamp with time zone NOT NULL,
	"created_by" text NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"deleted_at" timestamp with time zone,
	"deleted_by" text,
	CONSTRAINT "secrets_kind_check" CHECK ("secrets"."kind" in ('static', 'dynamic'))
);
--> statement-breakpoint
ALTER TABLE "leases" ADD COLUMN "secret_id" text;--> statement-breakpoint
ALTER TABLE "leases" ADD COLUMN "secret_version" text;--> statement-breakpoint
ALTER TABLE "leases" ADD COLUMN "grant_id" text;--> statement-breakpoint
ALTER TABLE "leases" ADD COLUMN "adapter" text;--> statement-breakpoint
ALTER TABLE "leases" ADD COLUMN "upstream_lease_id" text;--> statement-breakpoint
ALTER TABLE "leases" ADD COLUMN "upstream_revoke_state" text;--> statement-breakpoint
ALTER TABLE "leases" ADD COLUMN "upstream_revoke_attempts" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "leases" ADD COLUMN "upstream_revoke_next_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "leases" ADD COLUMN "upstream_revoke_error" text;--> statement-breakpoint
ALTER TABLE "grants" ADD CONSTRAINT "grants_service_account_id_service_accounts_id_fk" FOREIGN KEY ("service_account_id") REFERENCES "public"."service_accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "grants" ADD CONSTRAINT "grants_secret_id_secrets_id_fk" FOREIGN KEY ("secret_id") REFERENCES "public"."secrets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "secret_versions" ADD CONSTRAINT "secret_versions_secret_id_secrets_id_fk" FOREIGN KEY ("secret_id") REFERENCES "public"."secrets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "data_keys_active_purpose_idx" ON "data_keys" USING btree ("purpose") WHERE "data_keys"."status" = 'active';--> statement-breakpoint
CREATE INDEX "grants_account_idx" ON "grants" USING btree ("service_account_id");--> statement-breakpoint
CREATE INDEX "grants_secret_idx" ON "grants" USING btree ("secret_id");--> statement-breakpoint
CREATE INDEX "secret_versions_fingerprint_idx" ON "secret_versions" USING btree ("fingerprint");--> statement-breakpoint
CREATE UNIQUE INDEX "secrets_live_name_idx" ON "secrets" USING btree ("name") WHERE "secrets"."deleted_at" is null;--> statement-breakpoint
CREATE INDEX "leases_secret_idx" ON "leases" USING btree ("secret_id","secret_version");--> statement-breakpoint
CREATE INDEX "leases_grant_idx" ON "leases" USING btree ("grant_id");--> statement-breakpoint
CREATE INDEX "leases_upstream_revoke_idx" ON "leases" USING btree ("upstream_revoke_next_at") WHERE "leases"."upstream_revoke_state" in ('pending', 'failed');