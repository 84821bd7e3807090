/** How far a control is met, from the pack's own counts. */
export type ControlStatus = "satisfied" | "not_satisfied";

/** A measure of the product that implements regulatory controls, with the counts that decide its status. */
export interface ProductControl {
  id: string;
  title: string;
  status: ControlStatus;
  counts: Record<string, number>;
  /** The reason for the status, in one sentence. */
  basis: string;
  /** Pack files that hold the evidence. */
  evidence: string[];
}

/** A control of a framework, and the product controls that implement it. */
export interface FrameworkControl {
  framework: "NIS2" | "CIR 2024/2690" | "NIST CSF 2.0" | "OWASP NHI Top 10 2025";
  id: string;
  title: string;
  product_controls: string[];
}

/** The controls an evidence pack reports on, with the product controls that implement each. */
export const FRAMEWORK_CONTROLS: readonly FrameworkControl[] = [
  { framework: "NIS2", id: "Art. 21(2)(d)", title: "Supply chain security", product_controls: ["supplier-time-bound-access"] },
  {
    framework: "NIS2",
    id: "Art. 21(2)(i)",
    title: "Access control policies and asset management",
    product_controls: ["short-lived-issuance", "rotation-max-age", "revocation-on-offboarding", "owner-and-review", "supplier-time-bound-access"],
  },
  { framework: "NIS2", id: "Art. 21(2)(j)", title: "Multi-factor or continuous authentication", product_controls: ["operator-mfa"] },
  { framework: "CIR 2024/2690", id: "11.2", title: "Management of access rights", product_controls: ["revocation-on-offboarding", "owner-and-review", "supplier-time-bound-access", "tamper-evident-audit-log"] },
  { framework: "CIR 2024/2690", id: "11.3", title: "Privileged accounts and system administration accounts", product_controls: ["owner-and-review", "operator-mfa"] },
  { framework: "CIR 2024/2690", id: "11.5", title: "Identity management", product_controls: ["revocation-on-offboarding", "owner-and-review", "exception-register", "tamper-evident-audit-log"] },
  { framework: "CIR 2024/2690", id: "11.6", title: "Authentication", product_controls: ["short-lived-issuance", "rotation-max-age", "operator-mfa"] },
  { framework: "CIR 2024/2690", id: "3.2", title: "Logging", product_controls: ["tamper-evident-audit-log"] },
  { framework: "NIST CSF 2.0", id: "PR.AA-01", title: "Identities and credentials are managed", product_controls: ["short-lived-issuance", "rotation-max-age", "revocation-on-offboarding", "owner-and-review"] },
  { framework: "NIST CSF 2.0", id: "PR.AA-05", title: "Access permissions are defined, managed and reviewed", product_controls: ["revocation-on-offboarding", "owner-and-review"] },
  { framework: "NIST CSF 2.0", id: "PR.PS-04", title: "Log records are generated and made available", product_controls: ["tamper-evident-audit-log", "lineage-export"] },
  { framework: "OWASP NHI Top 10 2025", id: "NHI1", title: "Improper Offboarding", product_controls: ["revocation-on-offboarding", "owner-and-review", "lineage-export"] },
  { framework: "OWASP NHI Top 10 2025", id: "NHI3", title: "Vulnerable Third-Party NHI", product_controls: ["supplier-time-bound-access"] },
  { framework: "OWASP NHI Top 10 2025", id: "NHI7", title: "Long-Lived Secrets", product_controls: ["short-lived-issuance", "rotation-max-age"] },
  { framework: "OWASP NHI Top 10 2025", id: "NHI9", title: "NHI Reuse", product_controls: ["owner-and-review"] },
];

const STATUS_ORDER: ControlStatus[] = ["not_satisfied", "satisfied"];

/** Returns the status of a framework control: the least met of its product controls. */
export function combinedStatus(statuses: ControlStatus[]): ControlStatus {
  return statuses.reduce((worst, status) => (STATUS_ORDER.indexOf(status) < STATUS_ORDER.indexOf(worst) ? status : worst), "satisfied");
}
