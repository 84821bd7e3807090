/**
 * A workload process for the SDK tests, importing the SDK by its package name as an
 * application does. It obtains an access token and the credentials named in SDK_SECRETS,
 * then closes the client unless SDK_SKIP_CLOSE is set, prints a JSON report and returns
 * without calling process.exit: the process ends only when nothing keeps it running.
 */
import { createClient, privateKeyJwt } from "secrets-broker/sdk";

const client = createClient({
  broker: process.env["BROKER_ADDR"]!,
  identity: privateKeyJwt({ clientId: process.env["SDK_CLIENT_ID"]!, key: JSON.parse(process.env["SDK_PRIVATE_JWK"]!) }),
});
const leases: string[] = [];
for (const secret of process.env["SDK_SECRETS"]!.split(",")) {
  leases.push((await client.getCredential(secret, { scope: "secrets:read" })).leaseId);
}
const closed = process.env["SDK_SKIP_CLOSE"] ? null : await client.close();
console.log(JSON.stringify({ leases, closed, resources: process.getActiveResourcesInfo() }));
