import { randomUUID } from "node:crypto";
import type { BrokerDeps } from "../../../broker/deps.js";
import { JWT_BEARER_ASSERTION_TYPE, verifyClientAssertion } from "../../../broker/tokens/client-assertion.js";
import { issueAccessToken } from "../../../broker/tokens/token-service.js";

/** Time per stage of one in-process issuance, in milliseconds. */
export interface StageTimes {
  /** verifyClientAssertion: take the account and its keys from the process's snapshot cache, verify the assertion with the cached key. */
  authenticate: number[];
  /** issueAccessToken: sign the token, then check the account's revision, record the jti, insert the lease and append the audit event in one statement. */
  issue: number[];
}

/**
 * Returns the token endpoint's work for a client_credentials request without HTTP: the
 * two service calls that `POST /v1/token` makes, in the same order and with the same
 * arguments, each timed into `stages`. The form parsing, middleware and response of the
 * HTTP path are left out.
 */
export function createBrokerPathIssuer(deps: BrokerDeps, stages: StageTimes): (assertion: string) => Promise<boolean> {
  return async function issueInProcess(assertion: string): Promise<boolean> {
    const form = new Map([
      ["grant_type", "client_credentials"],
      ["client_assertion_type", JWT_BEARER_ASSERTION_TYPE],
      ["client_assertion", assertion],
    ]);
    const started = performance.now();
    const client = await verifyClientAssertion(deps, form, { cachedAccount: true });
    const authenticated = performance.now();

    await issueAccessToken(
      deps,
      { actor: "anonymous", role: null, requestId: randomUUID(), sourceAddress: "127.0.0.1" },
      {
        account: client.account,
        grantType: "client_credentials",
        audience: undefined,
        scope: undefined,
        ttl: undefined,
        clientKid: client.kid,
        assertionUse: client.assertionUse,
        accountVersion: client.accountVersion,
      },
    );
    const issued = performance.now();

    stages.authenticate.push(authenticated - started);
    stages.issue.push(issued - authenticated);
    return true;
  };
}
