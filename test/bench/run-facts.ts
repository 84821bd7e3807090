import { execFileSync } from "node:child_process";
import { loadavg } from "node:os";
import { fileURLToPath } from "node:url";

/** The repository root, from this file in test/bench/ or in dist/test/bench/. */
const REPOSITORY_ROOT = fileURLToPath(new URL(import.meta.url.includes("/dist/test/") ? "../../../" : "../../", import.meta.url));

/**
 * Names the commit of the measured broker code and any uncommitted changes to it, since the
 * figures hold only for that code. Returns "unknown" where git or the repository is missing.
 */
export function describeBrokerCode(): string {
  try {
    const git = (...args: string[]) => execFileSync("git", args, { cwd: REPOSITORY_ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    const commit = git("rev-parse", "--short", "HEAD").trim();
    const changed = git("status", "--porcelain", "--", "broker", "adapters", "migrations")
      .split("\n")
      .filter((line) => line.length > 0)
      .map((line) => line.slice(3));
    return changed.length === 0 ? `commit ${commit}, no uncommitted changes` : `commit ${commit} with uncommitted changes to ${changed.join(", ")}`;
  } catch {
    return "unknown (not a git checkout, or git is missing)";
  }
}

/** Formats the 1, 5 and 15 minute load averages for the report header. */
export function formatLoad(): string {
  return loadavg()
    .map((load) => load.toFixed(2))
    .join(", ");
}
