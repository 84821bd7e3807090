import { eq } from "drizzle-orm";
import { federatedSubjects, serviceAccounts, trustedIssuers } from "../../../db/schema.js";
import type { FindingRule, RuleMatch } from "../finding-types.js";

/**
 * Returns the workload that a federated subject identifies, at the grain of one
 * application: a Kubernetes namespace (`system:serviceaccount:<namespace>:<name>`), a
 * GitHub repository (`repo:<owner>/<repo>:...`), a SPIFFE trust domain and namespace
 * (`spiffe://<domain>/ns/<namespace>/...`), and otherwise the subject itself. The issuer
 * is part of it, because the same name on two platforms is two workloads.
 */
export function workloadOf(issuer: string, subject: string): string {
  const kubernetes = /^system:serviceaccount:([^:]+):/.exec(subject);
  if (kubernetes) return `${issuer} namespace ${kubernetes[1]}`;
  const github = /^repo:([^:]+):/.exec(subject);
  if (github) return `${issuer} repository ${github[1]}`;
  const spiffe = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\//.exec(subject);
  if (spiffe) return `${issuer} ${spiffe[1]} namespace ${spiffe[2]}`;
  return `${issuer} subject ${subject}`;
}

/**
 * An active account bound, through its federated subjects, to workloads of more than one
 * application, as `workloadOf` groups them. The register ties each account to one
 * application, so sharing shows in its bindings: two namespaces, two repositories or two
 * platforms presenting tokens as the same identity.
 */
export const accountReuse: FindingRule = {
  id: "account-reuse",
  async evaluate({ db }) {
    const rows = await db
      .select({ account: serviceAccounts, bindingId: federatedSubjects.id, issuer: trustedIssuers.issuer, subject: federatedSubjects.subject })
      .from(federatedSubjects)
      .innerJoin(serviceAccounts, eq(serviceAccounts.id, federatedSubjects.serviceAccountId))
      .innerJoin(trustedIssuers, eq(trustedIssuers.id, federatedSubjects.issuerId))
      .where(eq(serviceAccounts.status, "active"));

    const byAccount = new Map<string, typeof rows>();
    for (const row of rows) {
      byAccount.set(row.account.id, [...(byAccount.get(row.account.id) ?? []), row]);
    }

    return [...byAccount.values()].flatMap((bindings): RuleMatch[] => {
      const workloads = [...new Set(bindings.map((binding) => workloadOf(binding.issuer, binding.subject)))].sort();
      if (workloads.length < 2) {
        return [];
      }
      const account = bindings[0]!.account;
      return [
        {
          recordId: account.id,
          severity: "high",
          subject: { type: "service_account", id: account.id },
          records: [
            { type: "service_account", id: account.id },
            ...bindings.map((binding) => ({ type: "federated_subject" as const, id: binding.bindingId })),
          ],
          message: `service account ${account.name} (${account.id}) is bound to ${workloads.length} separate workloads (${workloads.join("; ")}); give each workload its own service account and remove the extra federated subjects`,
        },
      ];
    });
  },
};
