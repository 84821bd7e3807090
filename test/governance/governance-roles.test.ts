import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROLES, type Role, roleAllows } from "../../broker/auth/roles.js";
import { createServiceAccount, expectProblem } from "../support/register-fixtures.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import { daysFromNow, governanceSnapshot } from "./governance-fixtures.js";

interface RouteCase {
  /** `METHOD /path` as the OpenAPI document spells it. */
  route: string;
  /** The lowest role allowed to call the route. */
  role: Role;
  success: number;
  prepare?: (broker: TestBroker) => Promise<{ path?: string; body?: unknown }>;
}

async function newException(broker: TestBroker): Promise<string> {
  const account = await createServiceAccount(broker);
  const response = await broker.request("POST", "/v1/exceptions", { body: exceptionBody(broker, account.id) });
  return response.json.id as string;
}

function exceptionBody(broker: TestBroker, accountId: string) {
  return {
    control: "account-unused",
    service_account_id: accountId,
    reason: "seasonal job",
    compensating_controls: "lease report",
    accepted_by: "ciso@example.com",
    expires_at: daysFromNow(broker, 30),
  };
}

const ROUTES: RouteCase[] = [
  {
    route: "POST /v1/service-accounts/{id}/reviews",
    role: "operator",
    success: 201,
    prepare: async (broker) => ({
      path: `/v1/service-accounts/${(await createServiceAccount(broker)).id}/reviews`,
      body: { decision: "keep", reviewer: "alice@example.com" },
    }),
  },
  {
    route: "GET /v1/service-accounts/{id}/reviews",
    role: "auditor",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/service-accounts/${(await createServiceAccount(broker)).id}/reviews` }),
  },
  { route: "GET /v1/reviews", role: "auditor", success: 200 },
  { route: "GET /v1/reviews/overdue", role: "auditor", success: 200 },
  {
    route: "POST /v1/exceptions",
    role: "operator",
    success: 201,
    prepare: async (broker) => ({ body: exceptionBody(broker, (await createServiceAccount(broker)).id) }),
  },
  { route: "GET /v1/exceptions", role: "auditor", success: 200 },
  {
    route: "GET /v1/exceptions/{id}",
    role: "auditor",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/exceptions/${await newException(broker)}` }),
  },
  {
    route: "POST /v1/exceptions/{id}/revoke",
    role: "operator",
    success: 200,
    prepare: async (broker) => ({ path: `/v1/exceptions/${await newException(broker)}/revoke` }),
  },
  { route: "GET /v1/findings", role: "auditor", success: 200 },
];

describe("governance roles", () => {
  let broker: TestBroker;

  beforeAll(async () => {
    broker = await startTestBroker();
  });

  afterAll(async () => {
    await broker.close();
  });

  it("covers every governance route", async () => {
    const document = (await broker.request("GET", "/openapi.json", { token: null })).json;
    const documented = Object.entries(document.paths as Record<string, Record<string, { tags?: string[] }>>).flatMap(([path, operations]) =>
      Object.entries(operations)
        .filter(([, operation]) => operation.tags?.includes("governance"))
        .map(([method]) => `${method.toUpperCase()} ${path}`),
    );

    expect(documented.sort()).toEqual(ROUTES.map((route) => route.route).sort());
  });

  describe.each(ROUTES)("$route", (routeCase) => {
    const [method, template] = routeCase.route.split(" ") as [string, string];

    async function prepare(): Promise<{ path: string; body: unknown }> {
      const prepared = (await routeCase.prepare?.(broker)) ?? {};
      return { path: prepared.path ?? template, body: prepared.body };
    }

    it.each(ROLES.filter((role) => roleAllows(role, routeCase.role)))("%s allowed", async (role) => {
      const { path, body } = await prepare();

      const response = await broker.request(method, path, { token: broker.tokens[role], body });

      expect(response.status, response.text).toBe(routeCase.success);
    });

    const rejected = ROLES.filter((role) => !roleAllows(role, routeCase.role));
    if (rejected.length > 0) {
      it.each(rejected)("%s rejected with 403", async (role) => {
        const { path, body } = await prepare();
        const before = await governanceSnapshot(broker);

        const response = await broker.request(method, path, { token: broker.tokens[role], body });

        expectProblem(response, 403, "forbidden");
        expect(await governanceSnapshot(broker)).toEqual(before);
      });
    }

    it("no token rejected with 401", async () => {
      const { path, body } = await prepare();

      const response = await broker.request(method, path, { token: null, body });

      expectProblem(response, 401, "unauthenticated");
    });
  });
});
