import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  ListSecretsCommand,
  ListSecretVersionIdsCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from "@aws-sdk/client-secrets-manager";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { labelsOf, startAwsStandin } from "../support/aws-standin/aws-fixture.js";
import { type AwsStandin, STANDIN_REGION } from "../support/aws-standin/standin-server.js";

const TOKEN_A = "token-a-000000000000000000000000000000";
const TOKEN_B = "token-b-000000000000000000000000000000";

/** The stand-in's staging-label and paging rules, checked with the real SDK client so that a wrong stand-in cannot hide adapter bugs. */
describe("AWS Secrets Manager stand-in", () => {
  let standin: AwsStandin;
  let client: SecretsManagerClient;

  beforeAll(async () => {
    standin = await startAwsStandin();
    client = new SecretsManagerClient({ region: STANDIN_REGION, endpoint: standin.endpoint, credentials: standin.credentials, maxAttempts: 1 });
  });

  afterAll(async () => {
    client?.destroy();
    await standin?.close();
  });

  async function errorName(promise: Promise<unknown>): Promise<string> {
    return promise.then(
      () => "no error",
      (error: Error) => error.name,
    );
  }

  it("PutSecretValue moves AWSCURRENT and AWSPREVIOUS", async () => {
    const created = await client.send(new CreateSecretCommand({ Name: "standin/labels", SecretString: "one", ClientRequestToken: TOKEN_A }));
    await client.send(new PutSecretValueCommand({ SecretId: "standin/labels", SecretString: "two", ClientRequestToken: TOKEN_B }));

    expect(created.VersionId).toBe(TOKEN_A);
    expect(labelsOf(standin.store.secrets.get("standin/labels")!)).toEqual({ [TOKEN_A]: ["AWSPREVIOUS"], [TOKEN_B]: ["AWSCURRENT"] });
    const current = await client.send(new GetSecretValueCommand({ SecretId: "standin/labels" }));
    expect(current.SecretString).toBe("two");
    expect(current.CreatedDate).toBeInstanceOf(Date);
  });

  it("same token and value is idempotent, another value conflicts", async () => {
    await client.send(new CreateSecretCommand({ Name: "standin/tokens", SecretString: "one" }));
    const put = () => client.send(new PutSecretValueCommand({ SecretId: "standin/tokens", SecretString: "pending", ClientRequestToken: TOKEN_A, VersionStages: ["AWSPENDING"] }));

    await put();
    await put();

    expect(standin.store.secrets.get("standin/tokens")!.versions.size).toBe(2);
    expect(await errorName(client.send(new PutSecretValueCommand({ SecretId: "standin/tokens", SecretString: "other", ClientRequestToken: TOKEN_A })))).toBe(
      "ResourceExistsException",
    );
    expect(await errorName(client.send(new PutSecretValueCommand({ SecretId: "standin/tokens", SecretString: "short", ClientRequestToken: "short" })))).toBe("ValidationException");
  });

  it("UpdateSecretVersionStage move and remove rules", async () => {
    await client.send(new CreateSecretCommand({ Name: "standin/stages", SecretString: "one", ClientRequestToken: TOKEN_A }));
    await client.send(new PutSecretValueCommand({ SecretId: "standin/stages", SecretString: "two", ClientRequestToken: TOKEN_B, VersionStages: ["AWSPENDING"] }));
    const update = (input: Record<string, string>) => client.send(new UpdateSecretVersionStageCommand({ SecretId: "standin/stages", VersionStage: "AWSCURRENT", ...input }));

    expect(await errorName(update({ MoveToVersionId: TOKEN_B }))).toBe("InvalidParameterException");
    expect(await errorName(update({ MoveToVersionId: TOKEN_B, RemoveFromVersionId: TOKEN_B }))).toBe("InvalidParameterException");
    expect(await errorName(update({ RemoveFromVersionId: TOKEN_A }))).toBe("InvalidParameterException");
    expect(await errorName(update({ MoveToVersionId: "missing-version-00000000000000000000000" }))).toBe("ResourceNotFoundException");
    await update({ MoveToVersionId: TOKEN_B, RemoveFromVersionId: TOKEN_A });
    await client.send(new UpdateSecretVersionStageCommand({ SecretId: "standin/stages", VersionStage: "AWSPENDING", RemoveFromVersionId: TOKEN_B }));

    expect(labelsOf(standin.store.secrets.get("standin/stages")!)).toEqual({ [TOKEN_A]: ["AWSPREVIOUS"], [TOKEN_B]: ["AWSCURRENT"] });
  });

  it("deprecated versions listed only on request", async () => {
    await client.send(new CreateSecretCommand({ Name: "standin/deprecated", SecretString: "one", ClientRequestToken: TOKEN_A }));
    await client.send(new PutSecretValueCommand({ SecretId: "standin/deprecated", SecretString: "two", ClientRequestToken: TOKEN_B }));
    await client.send(new PutSecretValueCommand({ SecretId: "standin/deprecated", SecretString: "three" }));

    const labelled = await client.send(new ListSecretVersionIdsCommand({ SecretId: "standin/deprecated" }));
    const all = await client.send(new ListSecretVersionIdsCommand({ SecretId: "standin/deprecated", IncludeDeprecated: true }));
    const described = await client.send(new DescribeSecretCommand({ SecretId: "standin/deprecated" }));

    expect(labelled.Versions!.map((version) => version.VersionId)).not.toContain(TOKEN_A);
    expect(all.Versions!.map((version) => version.VersionId)).toContain(TOKEN_A);
    expect(Object.keys(described.VersionIdsToStages!)).toHaveLength(2);
    expect(await errorName(client.send(new GetSecretValueCommand({ SecretId: "standin/deprecated", VersionId: TOKEN_A, VersionStage: "AWSCURRENT" })))).toBe(
      "ResourceNotFoundException",
    );
  });

  it("ListSecrets pages and filters by name prefix and tag", async () => {
    for (const index of [1, 2, 3]) {
      await client.send(new CreateSecretCommand({ Name: `paging/app-${index}`, SecretString: "x", Tags: [{ Key: "owner", Value: index === 2 ? "team-b" : "team-a" }] }));
    }

    const names: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(new ListSecretsCommand({ MaxResults: 2, NextToken: token, Filters: [{ Key: "name", Values: ["paging/"] }] }));
      names.push(...page.SecretList!.map((secret) => secret.Name!));
      token = page.NextToken;
    } while (token);
    const tagged = await client.send(new ListSecretsCommand({ Filters: [{ Key: "tag-value", Values: ["team-b"] }] }));

    expect(names).toEqual(["paging/app-1", "paging/app-2", "paging/app-3"]);
    expect(tagged.SecretList!.map((secret) => secret.Name)).toEqual(["paging/app-2"]);
    expect(await errorName(client.send(new ListSecretsCommand({ MaxResults: 101 })))).toBe("InvalidParameterException");
  });

  it("deleted secret refused until force-deleted", async () => {
    await client.send(new CreateSecretCommand({ Name: "standin/deleted", SecretString: "x" }));
    await client.send(new DeleteSecretCommand({ SecretId: "standin/deleted", RecoveryWindowInDays: 7 }));

    expect(await errorName(client.send(new GetSecretValueCommand({ SecretId: "standin/deleted" })))).toBe("InvalidRequestException");
    await client.send(new DeleteSecretCommand({ SecretId: "standin/deleted", ForceDeleteWithoutRecovery: true }));
    expect(await errorName(client.send(new GetSecretValueCommand({ SecretId: "standin/deleted" })))).toBe("ResourceNotFoundException");
  });

  it("unsigned request rejected", async () => {
    const response = await fetch(standin.endpoint, {
      method: "POST",
      headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": "secretsmanager.ListSecrets" },
      body: "{}",
    });

    expect(response.status).toBe(400);
    expect(await response.json()).toEqual({ __type: "IncompleteSignatureException", message: expect.any(String) });
  });
});
