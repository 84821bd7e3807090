import { isMap, isSeq, LineCounter, parseDocument, type Document } from "yaml";
import { resolveTime } from "../config/relative-time.js";
import type { InvalidParam } from "../errors.js";
import { toInvalidParams } from "../http/validation.js";
import { Estate, type EstateInput } from "./estate-schema.js";

/** A problem in an estate file, with the line and column it comes from when known. */
export interface EstateFileProblem {
  field: string;
  reason: string;
  line?: number;
  column?: number;
}

/** Time fields that may be written relative to the import time (`+30d`, `-200d`). */
const TIME_FIELDS = ["expires_at", "last_reviewed_at", "approved_at", "contract_ends_at", "not_before", "not_after"];

/** A parsed estate file that can locate a field path such as `service_accounts[3].expires_at`. */
export class EstateFile {
  private constructor(
    private readonly document: Document,
    private readonly lines: LineCounter,
    readonly data: unknown,
  ) {}

  /** Parses YAML (JSON is YAML too). Returns the syntax problems instead when the text does not parse. */
  static parse(text: string, now: Date = new Date()): EstateFile | { problems: EstateFileProblem[] } {
    const lines = new LineCounter();
    const document = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    if (document.errors.length > 0) {
      return {
        problems: document.errors.map((error) => {
          const position = lines.linePos(error.pos[0]);
          return { field: "(file)", reason: error.message.split("\n")[0]!, line: position.line, column: position.col };
        }),
      };
    }
    return new EstateFile(document, lines, resolveRelativeTimes(document.toJS(), now));
  }

  /** Checks the file against the estate schema; the broker checks it again on import. */
  validate(): { estate: EstateInput } | { problems: EstateFileProblem[] } {
    const parsed = Estate.safeParse(this.data ?? {});
    if (parsed.success) {
      return { estate: parsed.data };
    }
    return { problems: this.locate(toInvalidParams(parsed.error.issues)) };
  }

  /** Adds line and column to each field named by the broker or the schema. */
  locate(params: InvalidParam[]): EstateFileProblem[] {
    return params.map((param) => ({ field: param.name, reason: param.reason, ...this.position(param.name) }));
  }

  /** Position of the deepest node of `field` present in the file. */
  position(field: string): { line?: number; column?: number } {
    const path = parseFieldPath(field);
    for (let length = path.length; length > 0; length -= 1) {
      const node = this.document.getIn(path.slice(0, length), true) as { range?: [number, number, number] } | undefined;
      const start = node?.range?.[0];
      if (start !== undefined) {
        const { line, col } = this.lines.linePos(start);
        return { line, column: col };
      }
      const parent = this.document.getIn(path.slice(0, length - 1), true);
      const key = path[length - 1];
      if (isMap(parent) && typeof key === "string") {
        const pair = parent.items.find((item) => (item.key as { value?: unknown })?.value === key);
        const keyRange = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
        if (keyRange) {
          const { line, col } = this.lines.linePos(keyRange[0]);
          return { line, column: col };
        }
      }
      if (isSeq(parent) || isMap(parent)) {
        const range = (parent as { range?: [number, number, number] }).range;
        if (range && length - 1 > 0) {
          const { line, col } = this.lines.linePos(range[0]);
          return { line, column: col };
        }
      }
    }
    return {};
  }
}

/** Splits `service_accounts[3].supplier.name` into `["service_accounts", 3, "supplier", "name"]`. */
export function parseFieldPath(field: string): (string | number)[] {
  const parts: (string | number)[] = [];
  for (const match of field.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) {
    parts.push(match[2] !== undefined ? Number(match[2]) : match[1]!);
  }
  return parts;
}

function resolveRelativeTimes(value: unknown, now: Date): unknown {
  if (Array.isArray(value)) {
    return value.map((item) => resolveRelativeTimes(item, now));
  }
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [
        key,
        TIME_FIELDS.includes(key) && typeof item === "string" ? resolveTime(item, now) : resolveRelativeTimes(item, now),
      ]),
    );
  }
  return value;
}
