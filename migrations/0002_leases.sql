CREATE TABLE "leases" (
	"id" text PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"service_account_id" text NOT NULL,
	"application_id" text NOT NULL,
	"parent_lease_id" text,
	"audience" text,
	"scopes" text[] NOT NULL,
	"token_jti" text,
	"signing_kid" text,
	"grant_type" text NOT NULL,
	"client_kid" text,
	"subject_issuer" text,
	"subject" text,
	"issued_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"max_expires_at" timestamp with time zone NOT NULL,
	"last_renewed_at" timestamp with time zone,
	"renew_count" integer DEFAULT 0 NOT NULL,
	"revoked_at" timestamp with time zone,
	"revoked_by" text,
	"revoke_reason" text,
	"expired_at" timestamp with time zone,
	"source_address" text,
	"request_id" text
);
--> statement-breakpoint
CREATE TABLE "used_assertions" (
	"issuer" text NOT NULL,
	"jti" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "used_assertions_issuer_jti_pk" PRIMARY KEY("issuer","jti")
);
--> statement-breakpoint
ALTER TABLE "signing_keys" ADD COLUMN "activates_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "leases" ADD CONSTRAINT "leases_service_account_id_service_accounts_id_fk" FOREIGN KEY ("service_account_id") REFERENCES "public"."service_accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "leases_account_idx" ON "leases" USING btree ("service_account_id");--> statement-breakpoint
CREATE INDEX "leases_application_idx" ON "leases" USING btree ("application_id");--> statement-breakpoint
CREATE INDEX "leases_parent_idx" ON "leases" USING btree ("parent_lease_id");--> statement-breakpoint
CREATE INDEX "leases_issued_idx" ON "leases" USING btree ("issued_at");--> statement-breakpoint
CREATE UNIQUE INDEX "leases_token_jti_idx" ON "leases" USING btree ("token_jti");--> statement-breakpoint
CREATE INDEX "leases_live_expiry_idx" ON "leases" USING btree ("expires_at") WHERE "leases"."revoked_at" is null and "leases"."expired_at" is null;--> statement-breakpoint
CREATE INDEX "used_assertions_expiry_idx" ON "used_assertions" USING btree ("expires_at");--> statement-breakpoint
UPDATE "signing_keys" SET "activates_at" = "created_at" WHERE "activates_at" IS NULL;--> statement-breakpoint
-- Bulk revocation by lease-id prefix needs a pattern index whatever the collation.
CREATE INDEX "leases_id_prefix_idx" ON "leases" USING btree ("id" text_pattern_ops);
