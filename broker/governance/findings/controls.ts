/** A requirement that a finding shows unmet, by framework and the framework's own id. */
export interface ControlReference {
  framework: "NIS2" | "CIR 2024/2690" | "NIST CSF 2.0" | "OWASP NHI Top 10 2025";
  id: string;
}

function nis2(...ids: string[]): ControlReference[] {
  return ids.map((id) => ({ framework: "NIS2", id: `Art. ${id}` }));
}

/** Ids of the annex of Commission Implementing Regulation (EU) 2024/2690, which details NIS2 Article 21 for digital providers. */
function cir(...ids: string[]): ControlReference[] {
  return ids.map((id) => ({ framework: "CIR 2024/2690", id: `Annex ${id}` }));
}

function csf(...ids: string[]): ControlReference[] {
  return ids.map((id) => ({ framework: "NIST CSF 2.0", id }));
}

function nhi(...ids: string[]): ControlReference[] {
  return ids.map((id) => ({ framework: "OWASP NHI Top 10 2025", id }));
}

/**
 * Controls that each rule checks. NIS2 Art. 21(2)(i) covers access control and asset
 * management, (h) cryptography and (d) supply-chain security. In the CIR annex, 11.2.3
 * requires access reviews at planned intervals, 11.3 for privileged-account controls,
 * 11.5.4 for deactivating unneeded identities and 11.5.3 for approving shared identities.
 * NHI1 is improper offboarding, NHI3 vulnerable third-party identities, NHI5 overprivileged
 * identities, NHI7 long-lived secrets and NHI9 identity reuse.
 */
export const RULE_CONTROLS = {
  "account-owner-missing": [...nis2("21(2)(i)"), ...cir("11.2.2(e)", "11.5.1"), ...csf("PR.AA-01", "ID.AM-02"), ...nhi("NHI1")],
  "account-expired-active": [...nis2("21(2)(i)"), ...cir("11.2.2(b)", "11.5.4"), ...csf("PR.AA-01", "PR.AA-05"), ...nhi("NHI1")],
  "review-overdue": [...nis2("21(2)(i)"), ...cir("11.2.3"), ...csf("PR.AA-05"), ...nhi("NHI1", "NHI5")],
  "privileged-token-ttl": [...nis2("21(2)(h)", "21(2)(i)"), ...cir("11.3", "11.6.2(c)"), ...csf("PR.AA-01", "PR.AA-05"), ...nhi("NHI5", "NHI7")],
  "secret-rotation-overdue": [...nis2("21(2)(h)", "21(2)(i)"), ...cir("11.6.2(c)"), ...csf("PR.AA-01"), ...nhi("NHI7", "NHI2")],
  "supplier-grant-unbounded": [
    ...nis2("21(2)(d)", "21(2)(i)"),
    ...cir("5.2", "6.7.2(h)", "11.2.2(d)"),
    ...csf("GV.SC-05", "GV.SC-10", "ID.AM-04"),
    ...nhi("NHI3"),
  ],
  "account-unused": [...nis2("21(2)(i)"), ...cir("11.5.4"), ...csf("PR.AA-01", "PR.AA-05"), ...nhi("NHI1")],
  "account-reuse": [...nis2("21(2)(i)"), ...cir("11.5.3"), ...csf("PR.AA-01", "PR.AA-05"), ...nhi("NHI9")],
  "grant-approval-missing": [...nis2("21(2)(i)"), ...cir("11.2.2(e)", "12.4.1"), ...csf("PR.AA-05"), ...nhi("NHI5")],
} as const satisfies Record<string, ControlReference[]>;
