import { describe, expect, it } from "vitest";
import { checkAuth } from "../../../src/config/rules/auth.js";
import { codes } from "./helpers.js";

describe("rules/auth", () => {
  it("an API key sent as a header (the default `in`) needs a header name", () => {
    expect(codes(checkAuth({ type: "api_key", name: "api key", value: "v" }))).toEqual([
      ["bad_value", "source.auth.name"],
    ]);
    expect(checkAuth({ type: "api_key", name: "X-Api-Key", value: "v" })).toEqual([]);
  });

  it("a query parameter name may be anything", () => {
    expect(checkAuth({ type: "api_key", name: "api key", value: "v", in: "query" })).toEqual([]);
  });

  it("other auth types have no cross-key rule", () => {
    expect(checkAuth(undefined)).toEqual([]);
    expect(checkAuth({ type: "bearer", token: "t" })).toEqual([]);
  });
});
