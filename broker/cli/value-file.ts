import { readFile } from "node:fs/promises";
import { UsageError } from "./cli-error.js";

/**
 * Reads a value file: a JSON object of string fields, or plain text without its trailing
 * newline. `emptyHint` is the advice for an empty file.
 */
export async function readValueFile(file: string, emptyHint = "Put the value in it, or omit --value-file to generate one."): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    throw new UsageError(`--value-file ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? "error"})`);
  }
  const trimmed = text.replace(/\r?\n$/, "");
  if (trimmed === "") {
    throw new UsageError(`--value-file ${file} is empty. ${emptyHint}`);
  }
  if (!trimmed.startsWith("{")) {
    return trimmed;
  }

  let fields: Record<string, unknown>;
  try {
    fields = JSON.parse(trimmed);
  } catch {
    throw new UsageError(`--value-file ${file} starts with '{' but is not valid JSON`);
  }
  const nonString = Object.keys(fields).find((field) => typeof fields[field] !== "string");
  if (nonString !== undefined) {
    throw new UsageError(`--value-file ${file}: field '${nonString}' must be a string, because a value is a JSON object of string fields`);
  }
  return fields;
}
