import { describe, expect, it } from "vitest";
import { checkSource } from "../../../src/config/rules/source.js";
import { codes } from "./helpers.js";

describe("rules/source", () => {
  it("accepts a plain source", () => {
    expect(checkSource({ base_url: "https://api.x.test/v1", allowed_hosts: ["cdn.x.test"] })).toEqual([]);
  });

  it("reports a base_url with the format's shape that does not parse", () => {
    expect(codes(checkSource({ base_url: "https://exa mple.test" }))).toEqual([]); // the format's case
    expect(codes(checkSource({ base_url: "https://[::1" }))).toEqual([["bad_url", "source.base_url"]]);
  });

  it("reports an initial retry delay longer than the longest, at the key written", () => {
    expect(codes(checkSource({ base_url: "https://x.test", retry: { initial_delay: "2m" } }))).toEqual([
      ["conflict", "source.retry.initial_delay"],
    ]);
    // Against the schema's default initial_delay (1s).
    expect(codes(checkSource({ base_url: "https://x.test", retry: { max_delay: "500ms" } }))).toEqual([
      ["conflict", "source.retry.max_delay"],
    ]);
    expect(
      checkSource({ base_url: "https://x.test", retry: { initial_delay: "1s", max_delay: "1s" } }),
    ).toEqual([]);
  });

  it("reports allowed hosts that are no origin, by index", () => {
    expect(
      codes(checkSource({ base_url: "https://x.test", allowed_hosts: ["ok.test", "http://[bad"] })),
    ).toEqual([["bad_url", "source.allowed_hosts[1]"]]);
  });
});
