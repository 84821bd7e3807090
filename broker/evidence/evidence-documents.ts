import { randomUUID } from "node:crypto";
import type { Finding } from "../governance/findings/finding-types.js";
import type { ControlReport } from "./evidence-controls.js";

/** Renders the controls as a Markdown page an auditor can read without tools. */
export function controlsMarkdown(controls: ControlReport[], meta: { generatedAt: string; issuer: string; from: string | null; to: string }): string {
  const lines = [
    "# Controls",
    "",
    `Evidence pack of ${meta.issuer}, generated ${meta.generatedAt}, for activity from ${meta.from ?? "the first record"} to ${meta.to}.`,
    "Each control's status is the least met of the product controls that implement it.",
    "",
    "| framework | control | status | product controls |",
    "|---|---|---|---|",
    ...controls.map((control) => `| ${control.framework} | ${control.id} ${control.title} | ${control.status} | ${control.product_controls.map((entry) => `${entry.title}: ${entry.status}`).join("; ")} |`),
    "",
    "## Product controls",
    "",
  ];
  const seen = new Set<string>();
  for (const entry of controls.flatMap((control) => control.product_controls)) {
    if (seen.has(entry.id)) continue;
    seen.add(entry.id);
    const counts = Object.entries(entry.counts).map(([name, value]) => `${name} ${value}`).join(", ");
    lines.push(`- **${entry.title}** (${entry.status}): ${entry.basis}.${counts ? ` Counts: ${counts}.` : ""}${entry.evidence.length ? ` Evidence: ${entry.evidence.join(", ")}.` : ""}`);
  }
  return `${lines.join("\n")}\n`;
}

const OSCAL_VERSION = "1.1.2";

/**
 * Renders the policy findings and the controls as OSCAL assessment results: one result
 * for the pack's window, one finding per policy finding and per framework control, with
 * the product controls as observations.
 */
export function oscalAssessmentResults(controls: ControlReport[], findings: Finding[], meta: { generatedAt: string; issuer: string; from: string | null; to: string }): unknown {
  const observations = new Map<string, { uuid: string; title: string; description: string; methods: string[]; collected: string }>();
  for (const entry of controls.flatMap((control) => control.product_controls)) {
    if (!observations.has(entry.id)) {
      observations.set(entry.id, { uuid: randomUUID(), title: entry.title, description: `${entry.status}: ${entry.basis}`, methods: ["AUTOMATED"], collected: meta.generatedAt });
    }
  }
  return {
    "assessment-results": {
      uuid: randomUUID(),
      metadata: { title: `secrets-broker evidence pack of ${meta.issuer}`, "last-modified": meta.generatedAt, version: "1", "oscal-version": OSCAL_VERSION },
      "import-ap": { href: "#controls.json" },
      results: [
        {
          uuid: randomUUID(),
          title: "Machine identity and secret controls",
          description: "Computed by secrets-broker from its register, lineage and audit log.",
          start: meta.from ?? meta.generatedAt,
          end: meta.to,
          observations: [...observations.values()],
          findings: [...findings.map(policyFinding), ...controls.map((control) => ({
            uuid: randomUUID(),
            title: `${control.framework} ${control.id} ${control.title}`,
            description: control.product_controls.map((entry) => `${entry.title}: ${entry.status}`).join("; "),
            target: {
              type: "objective-id",
              "target-id": `${control.framework} ${control.id}`,
              status: { state: control.status === "satisfied" ? "satisfied" : "not-satisfied" },
            },
            "related-observations": control.product_controls.map((entry) => ({ "observation-uuid": observations.get(entry.id)!.uuid })),
          }))],
        },
      ],
    },
  };
}

/** Renders a policy finding as an OSCAL finding; a suppressed one names the exception that accepts the risk. */
function policyFinding(finding: Finding) {
  return {
    uuid: randomUUID(),
    title: `${finding.rule}: ${finding.subject.type} ${finding.subject.id}`,
    description: finding.message,
    props: [
      { name: "finding-id", value: finding.id },
      { name: "severity", value: finding.severity },
      ...finding.controls.map((control) => ({ name: "control", value: `${control.framework} ${control.id}` })),
    ],
    target: { type: "objective-id", "target-id": finding.rule, status: { state: "not-satisfied" } },
    ...(finding.suppressed ? { remarks: `Risk accepted by exception ${finding.exception_id}.` } : {}),
  };
}
