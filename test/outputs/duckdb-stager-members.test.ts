import { describe, expect, it } from "vitest";
import { Stager } from "../../src/outputs/duckdb-stager.js";
import type { ColumnType } from "../../src/outputs/table-shape.js";
import { jsonType } from "../../src/records/quality.js";
import type { Row } from "../../src/records/shape.js";
import { seeded } from "../helpers/seeded.js";

/**
 * Stager.seeMembers (a record known by its members' names and JSON types, from the byte check)
 * against Stager.see (the record itself): after every record, the same columns with the same
 * types, whether each record went to `see`, or to `seeMembers` and to `see` when it said false.
 */
const TYPES = ["null", "array", "object", "string", "boolean", "integer", "number"];

function stager(planned: { name: string; kind: ColumnType | null }[]): Stager {
  // No connection is used before finish(); nothing is staged here.
  return new Stager(null as never, "t", planned, ["_run_id"], (_r, n) => `#${n}`, "test", {
    near: "/nonexistent",
    runId: "r",
  });
}

const VALUES: unknown[] = [null, 0, 7, -3, 2.5, -0.25, "a", "", true, false, [1], { a: 1 }, [], 2n ** 60n];
/** Values of each typed column's own type (most records hold those: a refusal ends a round). */
const OWN: Record<string, unknown[]> = {
  id: [1, -5, null],
  amount: [1, 2.5, null],
  name: ["x", "", null],
  when: ["2024-01-01T00:00:00Z", null],
  flag: [true, false, null],
  doc: VALUES,
};

function columns(s: Stager) {
  return s.columns.map((c) => ({ ...c }));
}

describe("Stager.seeMembers", () => {
  it("gives the columns `see` gives, record after record (20,000 random records, typed and untyped columns)", () => {
    const rnd = seeded(41);
    let told = 0;
    let refused = 0;
    for (let round = 0; round < 40; round++) {
      const planned: { name: string; kind: ColumnType | null }[] = [
        { name: "id", kind: "bigint" },
        { name: "amount", kind: "double" },
        { name: "name", kind: "text" },
        { name: "when", kind: "timestamptz" },
        { name: "flag", kind: "boolean" },
        { name: "doc", kind: "json" },
        { name: "free", kind: null },
      ];
      const a = stager(planned);
      const b = stager(planned);
      for (let k = 0; k < 500; k++) {
        const row: Row = {};
        for (const name of ["id", "amount", "name", "when", "flag", "doc", "free", "u1", "u2", "u3"]) {
          if (rnd() < 0.2) continue;
          const own = OWN[name];
          const pool = own && rnd() < 0.995 ? own : VALUES;
          row[name] = pool[Math.floor(rnd() * pool.length)];
        }
        let errA: unknown = null;
        try {
          a.see(row);
        } catch (err) {
          errA = err;
        }
        const names = Object.keys(row);
        const types = new Uint8Array(names.map((n) => TYPES.indexOf(jsonType(row[n]))));
        let errB: unknown = null;
        const before = columns(b);
        // The byte check passes no number of more than 15 digits: such a record is seen whole.
        const whole = Object.values(row).some((v) => typeof v === "bigint");
        if (!whole && b.seeMembers(names, types, names.length)) told++;
        else {
          // false: nothing changed; the record goes to `see`, which says what is wrong, if anything
          expect(columns(b)).toEqual(before);
          try {
            b.see(row);
          } catch (err) {
            errB = err;
          }
        }
        expect(String(errB)).toBe(String(errA));
        expect(columns(b)).toEqual(columns(a));
        if (errA) {
          refused++;
          break; // a stream stops at its first refused record
        }
      }
    }
    expect(told).toBeGreaterThan(2000);
    expect(refused).toBeGreaterThan(5);
  });

  it("an integer column that held a big integer becomes JSON, not a number, when a number comes (as `see` does)", () => {
    const a = stager([{ name: "x", kind: null }]);
    const b = stager([{ name: "x", kind: null }]);
    a.see({ x: 2n ** 60n });
    b.see({ x: 2n ** 60n });
    a.see({ x: 2.5 });
    expect(b.seeMembers(["x"], new Uint8Array([TYPES.indexOf("number")]), 1)).toBe(true);
    expect(columns(b)).toEqual(columns(a));
    expect(columns(b)[0].kind).toBe("json");
  });
});
