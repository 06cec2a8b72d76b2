/**
 * A value a PostgreSQL column refuses is described in the error without its text when it is a
 * string, an array or an object: it may hold a secret, and a value cut to fit the message (as it
 * was, at 80 characters) no longer matched the redactor that masks the message after.
 */
import { describe, expect, it } from "vitest";
import { encoder } from "../../src/outputs/postgres-encode.js";
import { Redactor } from "../../src/shared/secrets.js";

const refusal = (type: Parameters<typeof encoder>[0], v: unknown): string => {
  try {
    encoder(type)(v);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error("not refused");
};

describe("postgres: a refused value in its error", () => {
  it("a string, array or object by its size only; a number or boolean as it is", () => {
    const secret = "Tok-SECRET-1234567890";
    const text = `${"y".repeat(66)}${secret}`;
    const message = refusal("bigint", text);
    expect(message).toBe(
      "a string of 87 characters cannot go into a bigint column: the value is refused rather than changed (the column's type comes from the schema or the table)",
    );
    // What the run prints goes through the redactor: nothing of the secret is left to it.
    expect(new Redactor([secret]).text(message)).not.toMatch(/SECRET|Tok-/);
    expect(refusal("bigint", { token: secret })).toMatch(/^an object of \d+ characters of JSON cannot go/);
    expect(refusal("bigint", [secret])).toMatch(/^an array of \d+ characters of JSON cannot go/);
    expect(refusal("bigint", 1.5)).toMatch(/^a number \(1\.5\) cannot go into a bigint column/);
    expect(refusal("boolean", 7)).toMatch(/^a number \(7\) cannot go into a boolean column/);
  });

  it("an integer beyond 2^53 is refused by a double precision column, one beyond 64 bits by a bigint column", () => {
    expect(refusal("double", 9007199254740993n)).toMatch(
      /^an integer beyond 2\^53 \(9007199254740993\) cannot go into a double precision column/,
    );
    expect(encoder("double")(9007199254740992)).toBe("9007199254740992");
    expect(refusal("bigint", 12345678901234567890123n)).toMatch(
      /^an integer beyond 64 bits \(12345678901234567890123\) cannot go into a bigint column/,
    );
    expect(encoder("bigint")(9223372036854775807n)).toBe("9223372036854775807");
  });
});
