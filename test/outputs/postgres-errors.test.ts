/**
 * A PostgreSQL error of a load is shown with the server's COPY context (line and column), never
 * the value the server quotes after it: PostgreSQL cuts that value to 100 bytes, and a secret cut
 * there escaped the redactor.
 */
import { describe, expect, it } from "vitest";
import { loadError } from "../../src/outputs/postgres-connection.js";
import { Redactor } from "../../src/shared/secrets.js";

describe("postgres: a load error's context", () => {
  it("names the COPY line and column, not the value", () => {
    const secret = "Tok-SECRET-1234567890-abcdefghijklmnopqrstuvwxyz";
    const redactor = new Redactor([secret]);
    const err = Object.assign(
      new Error(`invalid input syntax for type timestamp with time zone: "${secret}"`),
      {
        code: "22007",
        where: `COPY _staging_r1_0a1b2c3d, line 7, column at: "${secret.slice(0, 20)}..."`,
      },
    );
    const e = loadError(err, "postgres://u@h/db", "events", (s) => redactor.text(s));
    expect(e.message).toBe(
      'PostgreSQL at postgres://u@h/db, table events: invalid input syntax for type timestamp with time zone: "***" [COPY _staging_r1_0a1b2c3d, line 7, column at]',
    );
  });
});
