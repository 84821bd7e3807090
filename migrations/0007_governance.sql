CREATE TABLE "access_reviews" (
	"id" text PRIMARY KEY NOT NULL,
	"service_account_id" text NOT NULL,
	"decision" text NOT NULL,
	"reviewer" text NOT NULL,
	"reviewer_is_owner" boolean NOT NULL,
	"notes" text,
	"reviewed_at" timestamp with time zone NOT NULL,
	"next_review_at" timestamp with time zone NOT NULL,
	"recorded_by" text NOT NULL,
	CONSTRAINT "access_reviews_decision_check" CHECK ("access_reviews"."decision" in ('keep', 'change', 'revoke'))
);
--> statement-breakpoint
CREATE TABLE "policy_exceptions" (
	"id" text PRIMARY KEY NOT NULL,
	"control" text NOT NULL,
	"service_account_id" text,
	"secret_id" text,
	"reason" text NOT NULL,
	"compensating_controls" text NOT NULL,
	"accepted_by" text NOT NULL,
	"accepted_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"created_by" text NOT NULL,
	"revoked_at" timestamp with time zone,
	"revoked_by" text,
	"revoke_reason" text,
	CONSTRAINT "policy_exceptions_subject_check" CHECK (("policy_exceptions"."service_account_id" is null) <> ("policy_exceptions"."secret_id" is null))
);
--> statement-breakpoint
ALTER TABLE "access_reviews" ADD CONSTRAINT "access_reviews_service_account_id_service_accounts_id_fk" FOREIGN KEY ("service_account_id") REFERENCES "public"."service_accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "policy_exceptions" ADD CONSTRAINT "policy_exceptions_service_account_id_service_accounts_id_fk" FOREIGN KEY ("service_account_id") REFERENCES "public"."service_accounts"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "policy_exceptions" ADD CONSTRAINT "policy_exceptions_secret_id_secrets_id_fk" FOREIGN KEY ("secret_id") REFERENCES "public"."secrets"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "access_reviews_account_idx" ON "access_reviews" USING btree ("service_account_id","reviewed_at");--> statement-breakpoint
CREATE INDEX "access_reviews_reviewed_idx" ON "access_reviews" USING btree ("reviewed_at");--> statement-breakpoint
CREATE INDEX "policy_exceptions_account_idx" ON "policy_exceptions" USING btree ("service_account_id");--> statement-breakpoint
CREATE INDEX "policy_exceptions_secret_idx" ON "policy_exceptions" USING btree ("secret_id");--> statement-breakpoint
CREATE INDEX "policy_exceptions_expires_idx" ON "policy_exceptions" USING btree ("expires_at");