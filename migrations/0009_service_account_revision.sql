-- A revision number on each service account, raised by every update whatever its source,
-- so that the token endpoint can check in its issuance statement that the account it
-- checked a request against is the one in the database.
ALTER TABLE "service_accounts" ADD COLUMN "revision" bigint DEFAULT 1 NOT NULL;--> statement-breakpoint
CREATE OR REPLACE FUNCTION service_accounts_raise_revision() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.revision := OLD.revision + 1;
  RETURN NEW;
END;
$$;--> statement-breakpoint
CREATE TRIGGER service_accounts_revision BEFORE UPDATE ON "service_accounts"
  FOR EACH ROW EXECUTE FUNCTION service_accounts_raise_revision();
