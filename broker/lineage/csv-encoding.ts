/** RFC 4180 section 2: records end with CRLF. */
export const CSV_RECORD_END = "\r\n";

/**
 * First characters that make a spreadsheet read a cell as a formula (CSV or formula
 * injection, as described by OWASP): `=`, `+`, `-`, `@`, and tab and carriage return,
 * which some spreadsheets skip before looking for one of the others.
 */
const FORMULA_START = /^[=+\-@\t\r]/;

/** Characters that force a field into double quotes (RFC 4180 section 2, rule 6). */
const NEEDS_QUOTES = /[",\r\n]/;

/**
 * Encodes one CSV record. A cell that a spreadsheet would run as a formula gets a single
 * quote in front, so `=1+2` is exported as `'=1+2`. Spreadsheets then show it as text
 * instead of evaluating it, and the original text follows the quote.
 */
export function csvRecord(cells: readonly string[]): string {
  return cells.map((cell) => quoteField(neutralizeFormula(cell))).join(",") + CSV_RECORD_END;
}

/** Renders a value as a CSV cell: null and undefined empty, times in RFC 3339, lists space-separated (as an OAuth `scope`), objects as JSON. */
export function csvCell(value: unknown): string {
  if (value === null || value === undefined) return "";
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.join(" ");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function neutralizeFormula(cell: string): string {
  return FORMULA_START.test(cell) ? `'${cell}` : cell;
}

function quoteField(cell: string): string {
  return NEEDS_QUOTES.test(cell) ? `"${cell.replaceAll('"', '""')}"` : cell;
}
