/** Writes a value as pretty JSON to standard output. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Writes rows as an aligned text table with the given columns. */
export function printTable(rows: Record<string, unknown>[], columns: string[]): void {
  if (rows.length === 0) {
    process.stdout.write("(none)\n");
    return;
  }
  const cells = rows.map((row) => columns.map((column) => formatCell(row[column])));
  const widths = columns.map((column, index) => Math.max(column.length, ...cells.map((line) => line[index]!.length)));
  const render = (line: string[]) => line.map((cell, index) => cell.padEnd(widths[index]!)).join("  ").trimEnd();
  process.stdout.write(`${render(columns.map((column) => column.toUpperCase()))}\n`);
  for (const line of cells) {
    process.stdout.write(`${render(line)}\n`);
  }
}

/** Writes an object as `key: value` lines. */
export function printFields(value: Record<string, unknown>): void {
  const width = Math.max(...Object.keys(value).map((key) => key.length));
  for (const [key, item] of Object.entries(value)) {
    process.stdout.write(`${key.padEnd(width)}  ${formatCell(item)}\n`);
  }
}

function formatCell(value: unknown): string {
  if (value === null || value === undefined) return "-";
  if (Array.isArray(value)) return value.length === 0 ? "-" : value.join(",");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}
