import { describe, expect, it } from "vitest";
import { checkFilter, compileFilter } from "../../src/lang/record-filter.js";

describe("filter expressions checked when the file loads", () => {
  it("accepts expressions on the record (`@`), its members, methods and literals", () => {
    for (const ok of [
      "@.type != 'bot' && @.amount > 0",
      "@.tags.includes('x')",
      "!@.deleted",
      "@.a === undefined",
      "@['a'] > 1 || @.b == null",
      "typeof @.name === 'string' && @.name.length > 2",
      "@.n > 5 ? true : false",
      "@root.kind == 'x'",
    ])
      expect(checkFilter(ok), ok).toBeNull();
  });

  it("refuses a name that is not defined: it would drop every record", () => {
    // Each of these is false for every record at run time (the name throws), so all are filtered out.
    const rec = { type: "user", amount: 3 };
    for (const bad of ["$.type != 'bot'", "type != 'bot'", "Math.max(@.amount, 1) > 2"]) {
      expect(compileFilter(bad).test(rec), bad).toBe(false);
      expect(checkFilter(bad), bad).toMatch(/which is not defined: the record is `@`/);
    }
    expect(checkFilter("$.a > 1 && b")).toContain("the filter uses `$` and `b`, which are not defined");
    expect(checkFilter("@.a ==== 1")).toMatch(/^the filter expression does not parse/);
  });
});
