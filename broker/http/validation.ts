import type { z } from "@hono/zod-openapi";
import type { InvalidParam } from "../errors.js";

type Issue = z.core.$ZodIssue;

/** Turns zod issues into named fields with a reason that tells how to fix the value. */
export function toInvalidParams(issues: readonly Issue[], prefix?: string): InvalidParam[] {
  return issues.flatMap((issue) => {
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => ({
        name: fieldName([...issue.path, key], prefix),
        reason: "unknown field; remove it",
      }));
    }
    return [{ name: fieldName(issue.path, prefix), reason: reasonFor(issue) }];
  });
}

function fieldName(path: readonly PropertyKey[], prefix: string | undefined): string {
  const joined = path
    .map((part, index) => (typeof part === "number" ? `[${part}]` : `${index === 0 ? "" : "."}${String(part)}`))
    .join("");
  if (!prefix) {
    return joined || "body";
  }
  return joined ? `${prefix}.${joined}` : prefix;
}

function reasonFor(issue: Issue): string {
  if (issue.code === "invalid_type" && issue.message.endsWith("received undefined")) {
    return `is required (${issue.expected})`;
  }
  return issue.message;
}
