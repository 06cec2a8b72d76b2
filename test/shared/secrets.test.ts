/** The Redactor (shared/secrets.ts) and quote/cut (shared/errors.ts) on their own: what is masked, where, how much is shown. */
import { describe, expect, it } from "vitest";
import {
  cut,
  firstBytes,
  MESSAGE_CHARS,
  QUOTE_CHARS,
  quote,
  RunError,
  TransportError,
} from "../../src/shared/errors.js";
import { MAX_NESTING } from "../../src/shared/json-text.js";
import {
  basicCredential,
  databaseUrlSecrets,
  MASK,
  Redactor,
  SENSITIVE_HEADERS,
} from "../../src/shared/secrets.js";

const SECRET = "s3cr/t+Key=1 2";

describe("Redactor", () => {
  it("masks a secret raw, URL-encoded, form-encoded and JSON-escaped", () => {
    const r = new Redactor([SECRET, 'q"uo\\te']);
    const forms = [
      SECRET,
      encodeURIComponent(SECRET),
      new URLSearchParams({ x: SECRET }).toString().slice(2),
      JSON.stringify('q"uo\\te').slice(1, -1),
    ];
    for (const f of forms) expect(r.text(`a ${f} b`)).toBe(`a ${MASK} b`);
  });

  it("masks every occurrence, the longest secret first (a secret inside another is not half shown)", () => {
    const r = new Redactor(["abc", "abcdef"]);
    expect(r.text("abcdef abc abcdef")).toBe(`${MASK} ${MASK} ${MASK}`);
    expect(r.longest).toBe(6);
  });

  it("searches for values of 3 characters and more only; shorter ones and non-strings are ignored", () => {
    const r = new Redactor(["ab", "abc", 7 as unknown as string]);
    expect(r.text("ab abc 7")).toBe(`ab ${MASK} 7`);
    expect(r.size).toBe(1);
    // An encoded form shorter than 3 characters is not searched for either.
    expect(new Redactor(["x"]).size).toBe(0);
  });

  it("treats regex characters in a secret literally", () => {
    const r = new Redactor(["a.c*(d)[e]{2}^$|?\\"]);
    expect(r.text("abc*(d)[e]{2}^$|?\\ a.c*(d)[e]{2}^$|?\\")).toBe(`abc*(d)[e]{2}^$|?\\ ${MASK}`);
  });

  it("without secrets: text and values are returned as they are", () => {
    const r = new Redactor([]);
    const v = { a: "x" };
    expect(r.text("anything")).toBe("anything");
    expect(r.value(v)).toBe(v);
    expect(r.size).toBe(0);
    expect(r.longest).toBe(0);
  });

  it("learns secrets during the run (a fetched token); adding known ones changes nothing", () => {
    const r = new Redactor(["first-secret"]);
    const size = r.size;
    r.add(["first-secret"]);
    expect(r.size).toBe(size);
    r.add(["tok_fetched"]);
    expect(r.text("first-secret tok_fetched")).toBe(`${MASK} ${MASK}`);
  });

  it("value: a deep copy with secrets masked in strings and keys; other values kept; __proto__ a field", () => {
    const r = new Redactor([SECRET]);
    const input = JSON.parse(
      `{"k":"${SECRET}","n":1,"b":true,"z":null,"list":["${SECRET}",2],"${SECRET}":{"__proto__":"${SECRET}"}}`,
    );
    const out = r.value(input);
    expect(out).toEqual(
      JSON.parse(`{"k":"***","n":1,"b":true,"z":null,"list":["***",2],"***":{"__proto__":"***"}}`),
    );
    expect(Object.getPrototypeOf(out[MASK])).toBe(Object.prototype);
    expect(input.k).toBe(SECRET); // a copy
  });

  it("value: nesting beyond the limit is a too_deep error, not a stack overflow", () => {
    const r = new Redactor([SECRET]);
    let deep: unknown = "x";
    for (let i = 0; i < MAX_NESTING + 1; i++) deep = [deep];
    expect(() => r.value(deep)).toThrow(expect.objectContaining({ kind: "too_deep" }));
    let deepMap: unknown = "x";
    for (let i = 0; i < MAX_NESTING + 1; i++) deepMap = { a: deepMap };
    expect(() => r.value(deepMap)).toThrow(expect.objectContaining({ kind: "too_deep" }));
    let ok: unknown = SECRET;
    for (let i = 0; i < MAX_NESTING - 1; i++) ok = [ok];
    expect(JSON.stringify(r.value(ok))).toContain(MASK);
  });

  it("basicCredential is base64(user:pass); the sensitive headers are the three of the README", () => {
    expect(basicCredential("bob", "pw")).toBe(Buffer.from("bob:pw").toString("base64"));
    expect([...SENSITIVE_HEADERS].sort()).toEqual(["authorization", "cookie", "proxy-authorization"]);
  });
});

describe("databaseUrlSecrets", () => {
  it("the password alone and the query's secrets, also when the password holds a `%` that starts no escape", () => {
    for (const url of [
      "postgres://u:50%off-Pass@db.test:5432/app?sslpassword=ssl-Secret-1",
      "rediss://:50%off-Pass@cache.test:6380/0?password=ssl-Secret-1",
    ]) {
      const r = new Redactor(databaseUrlSecrets(url));
      expect(r.text("auth 50%off-Pass, key ssl-Secret-1")).toBe("auth ***, key ***");
    }
    const r = new Redactor(databaseUrlSecrets("redis://user:p%40ss-Word@cache.test"));
    expect(r.text("p@ss-Word p%40ss-Word")).toBe("*** ***");
  });
});

describe("cut", () => {
  it("keeps text up to max, and says how much more there was", () => {
    expect(cut("abcdef", 6)).toBe("abcdef");
    expect(cut("abcdefg", 6)).toBe("abcdef… (1 more characters)");
  });

  it("a RunError message is cut at MESSAGE_CHARS and keeps its kind and details", () => {
    const e = new RunError("http", "x".repeat(MESSAGE_CHARS + 5), { status: 500 });
    expect(e.message).toBe(`${"x".repeat(MESSAGE_CHARS)}… (5 more characters)`);
    expect(e.kind).toBe("http");
    expect(e.details).toEqual({ status: 500 });
    expect(e.name).toBe("RunError");
    expect(new RunError("internal", "m").details).toEqual({});
  });
});

describe("TransportError", () => {
  it("is retried unless the body was too large or the run was aborted", () => {
    expect(new TransportError("reset", "m").retryable).toBe(true);
    expect(new TransportError("timeout", "m").retryable).toBe(true);
    expect(new TransportError("too_large", "m").retryable).toBe(false);
    expect(new TransportError("aborted", "m").retryable).toBe(false);
    expect(new TransportError("reset", "m").name).toBe("TransportError");
  });
});

describe("quote", () => {
  const r = new Redactor(["two  spaces", "tok_abcdef"]);

  it("short text: masked, whitespace collapsed and trimmed, not cut", () => {
    expect(quote("  a\n\tb tok_abcdef  ", r)).toBe(`a b ${MASK}`);
    expect(quote(Buffer.from("x tok_abcdef"), r)).toBe(`x ${MASK}`);
  });

  it("masks before collapsing whitespace (a secret holding two spaces)", () => {
    expect(quote("a two  spaces b", r)).toBe(`a ${MASK} b`);
  });

  it("masks again after collapsing (a secret that holds single spaces after collapsing)", () => {
    const single = new Redactor(["one two"]);
    expect(quote("x one\n two y", single)).toBe(`x ${MASK} y`);
  });

  it("cuts at max with an ellipsis; text of exactly max is kept whole", () => {
    expect(quote("a".repeat(10), r, 10)).toBe("a".repeat(10));
    expect(quote("a".repeat(11), r, 10)).toBe(`${"a".repeat(10)}…`);
    expect(quote("a".repeat(QUOTE_CHARS + 1), r)).toBe(`${"a".repeat(QUOTE_CHARS)}…`);
  });

  it("a secret at the edge of the decoded window is never shown in part", () => {
    const max = 20;
    const margin = r.longest;
    const window = (max + margin) * 4;
    for (let at = window - 12; at <= window + 2; at++) {
      const text = `${"a".repeat(at)}tok_abcdef${"b".repeat(2000)}`;
      for (const v of [text, Buffer.from(text)]) {
        const shown = quote(v, r, max);
        expect(shown).not.toMatch(/tok_|_abc|abcdef/);
        expect(shown.endsWith("…")).toBe(true);
      }
    }
  });

  it("a secret cut by the end of the decoded window is dropped, never shown in part", () => {
    // max 20, longest secret 10: the window is (20 + 10) * 4 = 120 characters. Spaces collapse,
    // so what lies at the window's end would reach the 20 characters shown.
    const r = new Redactor(["tok_abcdef"]);
    const spaces = (n: number) => " ".repeat(n);
    const partial = `x${spaces(112)}tok_abcdef${"y".repeat(50)}`; // the window ends after "tok_abc"
    expect(quote(partial, r, 20)).toBe("x…");
    expect(quote(Buffer.from(partial), r, 20)).toBe("x…");
    const whole = `x${spaces(105)}tok_abcdef${"y".repeat(50)}`; // masked, then the margin dropped
    expect(quote(whole, r, 20)).toBe("x…");
    // Exactly the window: nothing is cut, so the secret is masked whole and nothing dropped.
    const exact = `x${spaces(109)}tok_abcdef`;
    expect(exact.length).toBe(120);
    expect(quote(exact, r, 20)).toBe(`x ${MASK}`);
  });

  it("long text: only the first bytes are decoded; the result is max characters and an ellipsis", () => {
    const shown = quote(Buffer.from(`${"é".repeat(5000)}`), r, 100);
    expect(shown).toBe(`${"é".repeat(100)}…`);
    const none = new Redactor([]);
    expect(quote(`${"c".repeat(300)}`, none, 100)).toBe(`${"c".repeat(100)}…`);
  });
});

describe("firstBytes", () => {
  it("the first n characters of a library's own message, whitespace collapsed, an ellipsis when cut", () => {
    expect(firstBytes("a  b\n c")).toBe("a b c");
    expect(firstBytes("abcdef", 6)).toBe("abcdef");
    expect(firstBytes("abcdefg", 6)).toBe("abcdef…");
    expect(firstBytes(Buffer.from("é".repeat(10)), 3)).toBe("ééé…");
    expect(firstBytes(Buffer.from(`${"x".repeat(499)}\n`))).toBe("x".repeat(499));
  });
});
