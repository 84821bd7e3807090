CREATE TABLE "applications" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"technical_owner" text NOT NULL,
	"business_owner" text,
	"criticality" text NOT NULL,
	"regulated" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "applications_name_unique" UNIQUE("name")
);
--> statement-breakpoint
CREATE TABLE "audit_chain_head" (
	"id" integer PRIMARY KEY NOT NULL,
	"seq" bigint NOT NULL,
	"hash" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "audit_events" (
	"seq" bigint PRIMARY KEY NOT NULL,
	"occurred_at" timestamp with time zone NOT NULL,
	"actor" text NOT NULL,
	"action" text NOT NULL,
	"target" text,
	"outcome" text NOT NULL,
	"request_id" text,
	"source_address" text,
	"details" jsonb NOT NULL,
	"prev_hash" text NOT NULL,
	"hash" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "broker_state" (
	"key" text PRIMARY KEY NOT NULL,
	"value" jsonb NOT NULL,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "federated_subjects" (
	"id" text PRIMARY KEY NOT NULL,
	"service_account_id" text NOT NULL,
	"issuer_id" text NOT NULL,
	"subject" text NOT NULL,
	"claims" jsonb NOT NULL,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "operator_tokens" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"role" text NOT NULL,
	"secret_hash" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"created_by" text NOT NULL,
	"expires_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	"revoked_by" text,
	CONSTRAINT "operator_tokens_role_check" CHECK ("operator_tokens"."role" in ('admin', 'operator', 'auditor'))
);
--> statement-breakpoint
CREATE TABLE "service_accounts" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"application_id" text NOT NULL,
	"technical_owner" text NOT NULL,
	"kind" text NOT NULL,
	"privileged" boolean DEFAULT false NOT NULL,
	"status" text NOT NULL,
	"status_reason" text,
	"expires_at" timestamp with time zone NOT NULL,
	"review_interval_days" integer NOT NULL,
	"last_reviewed_at" timestamp with time zone,
	"max_token_ttl" integer NOT NULL,
	"allowed_audiences" text[] NOT NULL,
	"allowed_scopes" text[] NOT NULL,
	"supplier" jsonb,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "service_accounts_name_unique" UNIQUE("name"),
	CONSTRAINT "service_accounts_status_check" CHECK ("service_accounts"."status" in ('active', 'suspended', 'decommissioned')),
	CONSTRAINT "service_accounts_kind_check" CHECK ("service_accounts"."kind" in ('workload', 'ci', 'automation', 'supplier'))
);
--> statement-breakpoint
CREATE TABLE "signing_keys" (
	"kid" text PRIMARY KEY NOT NULL,
	"alg" text NOT NULL,
	"public_jwk" jsonb NOT NULL,
	"private_key_ciphertext" text NOT NULL,
	"status" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"retired_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "trusted_issuers" (
	"id" text PRIMARY KEY NOT NULL,
	"issuer" text NOT NULL,
	"jwks" jsonb,
	"jwks_uri" text,
	"audiences" text[] NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	CONSTRAINT "trusted_issuers_issuer_unique" UNIQUE("issuer")
);
--> statement-breakpoint
CREATE TABLE "workload_keys" (
	"id" text PRIMARY KEY NOT NULL,
	"service_account_id" text NOT NULL,
	"kid" text NOT NULL,
	"alg" text NOT NULL,
	"jwk" jsonb NOT NULL,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "federated_subjects" ADD CONSTRAINT "federated_subjects_service_account_id_service_accounts_id_fk" FOREIGN KEY ("service_account_id") REFERENCES "public"."service_accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "federated_subjects" ADD CONSTRAINT "federated_subjects_issuer_id_trusted_issuers_id_fk" FOREIGN KEY ("issuer_id") REFERENCES "public"."trusted_issuers"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "service_accounts" ADD CONSTRAINT "service_accounts_application_id_applications_id_fk" FOREIGN KEY ("application_id") REFERENCES "public"."applications"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "workload_keys" ADD CONSTRAINT "workload_keys_service_account_id_service_accounts_id_fk" FOREIGN KEY ("service_account_id") REFERENCES "public"."service_accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "audit_events_occurred_idx" ON "audit_events" USING btree ("occurred_at");--> statement-breakpoint
CREATE INDEX "audit_events_actor_idx" ON "audit_events" USING btree ("actor");--> statement-breakpoint
CREATE INDEX "audit_events_action_idx" ON "audit_events" USING btree ("action");--> statement-breakpoint
CREATE INDEX "audit_events_target_idx" ON "audit_events" USING btree ("target");--> statement-breakpoint
CREATE UNIQUE INDEX "federated_subjects_binding_idx" ON "federated_subjects" USING btree ("service_account_id","issuer_id","subject");--> statement-breakpoint
CREATE INDEX "service_accounts_application_idx" ON "service_accounts" USING btree ("application_id");--> statement-breakpoint
CREATE INDEX "service_accounts_expires_idx" ON "service_accounts" USING btree ("expires_at");--> statement-breakpoint
CREATE UNIQUE INDEX "workload_keys_account_kid_idx" ON "workload_keys" USING btree ("service_account_id","kid");