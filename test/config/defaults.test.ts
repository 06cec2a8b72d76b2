import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { compileAuth } from "../../src/compile/compile-auth.js";
import { compileOutput, compileValidation } from "../../src/compile/compile-output.js";
import { compilePaginator } from "../../src/compile/compile-paginator.js";
import { compilePlan } from "../../src/compile/compile-plan.js";
import { parseDuration, parseSize } from "../../src/shared/units.js";
import { loadOk, tempProject } from "./helpers.js";

/**
 * The format's `default`s are the compilers' defaults. The schema is read here as a file (not
 * through src/config/defaults.gen.ts), so a compiler that drifts from it fails.
 */
const REPO = fileURLToPath(new URL("../../", import.meta.url));
interface SchemaNode {
  default?: unknown;
  properties?: Record<string, SchemaNode>;
  oneOf?: SchemaNode[];
}
const SCHEMA = JSON.parse(readFileSync(`${REPO}schemas/pipeline.schema.json`, "utf8")) as {
  definitions: Record<string, SchemaNode & Record<string, SchemaNode>>;
};
/** The schema's `default` of `definition.key` (it must have one). */
function schemaDefault(definition: string, key: string): unknown {
  const def = SCHEMA.definitions[definition];
  const value = (def.properties ?? def)[key]?.default;
  if (value === undefined) throw new Error(`no default for ${definition}.${key} in the schema`);
  return value;
}
const d = (key: string) => (definition: string) => schemaDefault(definition, key);

describe("defaults come from the format schema", () => {
  const { project, cleanup } = tempProject();
  afterAll(cleanup);

  it("src/config/defaults.gen.ts and pipeline-types.gen.ts are up to date with the schema", () => {
    // Exits 1 (and throws here) when a generated file differs from what the schema gives.
    execFileSync(process.execPath, [`${REPO}scripts/gen-types.mjs`, "--check"], { stdio: "pipe" });
  });

  it("a minimal pipeline compiles to the schema's defaults", () => {
    const text =
      "source:\n  base_url: https://x.test\n  retry: {}\nstreams:\n  a: { path: /a, flatten: { } }\n";
    const plan = compilePlan(loadOk(project, text));
    const s = plan.streams[0];
    expect(plan.source.timeoutMs).toBe(parseDuration(schemaDefault("source", "timeout") as string));
    expect(plan.source.concurrency).toBe(schemaDefault("source", "concurrency"));
    expect(plan.source.maxResponseBytes).toBe(
      parseSize(schemaDefault("source", "max_response_size") as string),
    );
    expect(plan.source.retry).toEqual({
      maxAttempts: schemaDefault("retry", "max_attempts"),
      initialDelayMs: parseDuration(schemaDefault("retry", "initial_delay") as string),
      maxDelayMs: parseDuration(schemaDefault("retry", "max_delay") as string),
      onStatus: schemaDefault("retry", "on_status"),
    });
    expect(s.request.method).toBe(schemaDefault("stream", "method"));
    expect(s.records).toBe(schemaDefault("stream", "records"));
    expect(s.onPartitionError).toBe(schemaDefault("stream", "on_partition_error"));
    const flattenObject = SCHEMA.definitions.stream.properties!.flatten.oneOf![1].properties!;
    expect(s.flatten).toEqual({ separator: flattenObject.separator.default });
    expect(compileOutput(undefined, { pipeline: "p", stream: "a", root: "/r", outDir: "/o" })).toMatchObject({
      format: schemaDefault("output", "format"),
      mode: schemaDefault("output", "mode"),
    });
    expect(compileValidation(undefined)).toEqual({
      invalidRecords: schemaDefault("validation", "invalid_records"),
      maxInvalidRatio: schemaDefault("validation", "max_invalid_ratio"),
      drift: schemaDefault("validation", "drift"),
    });
  });

  it("auth compilers use the schema's defaults", () => {
    expect(compileAuth({ type: "bearer", token: "t" })).toMatchObject({ scheme: d("scheme")("authBearer") });
    expect(compileAuth({ type: "basic", username: "u" })).toMatchObject({
      password: d("password")("authBasic"),
    });
    expect(compileAuth({ type: "api_key", name: "k", value: "v" })).toMatchObject({
      in: d("in")("authApiKey"),
    });
    expect(
      compileAuth({ type: "oauth2", token_url: "https://x.test/t", grant_type: "client_credentials" }),
    ).toMatchObject({
      clientAuth: d("client_auth")("authOAuth2"),
      refreshBeforeMs: parseDuration(d("refresh_before")("authOAuth2") as string),
    });
  });

  it("paginator compilers use the schema's defaults", () => {
    const common = {
      maxEmptyPages: schemaDefault("paginateCommon", "max_empty_pages"),
      stopOnEmptyPage: schemaDefault("paginateCommon", "stop_on_empty_page"),
    };
    expect(compilePaginator({ type: "cursor", cursor: "$.next" })).toMatchObject({
      ...common,
      param: d("param")("paginateCursor"),
      in: d("in")("paginateCursor"),
    });
    expect(compilePaginator({ type: "offset" })).toMatchObject({
      ...common,
      offsetParam: d("offset_param")("paginateOffset"),
      limitParam: d("limit_param")("paginateOffset"),
      limit: d("limit")("paginateOffset"),
      start: d("start")("paginateOffset"),
    });
    expect(compilePaginator({ type: "page" })).toMatchObject({
      pageParam: d("page_param")("paginatePage"),
      start: d("start")("paginatePage"),
    });
    expect(compilePaginator({ type: "link_header" })).toMatchObject({ rel: d("rel")("paginateLinkHeader") });
  });

  it("an incremental stream's `in` is the schema's default", () => {
    const text =
      "source:\n  base_url: https://x.test\nstreams:\n  a:\n    path: /a\n    incremental: { cursor_field: u, param: since }\n";
    expect(compilePlan(loadOk(project, text)).streams[0].incremental?.in).toBe(
      schemaDefault("incremental", "in"),
    );
  });
});

describe("defaults of nested objects (response.csv, output.csv)", () => {
  it("every `default` under a nested object of the schema is in DEFAULTS, by its path", async () => {
    const { DEFAULTS } = await import("../../src/config/defaults.gen.js");
    const found: Record<string, Record<string, unknown>> = {};
    const walk = (group: string, props: Record<string, SchemaNode> | undefined, depth: number) => {
      for (const [key, prop] of Object.entries(props ?? {})) {
        if (depth > 0 && prop.default !== undefined) (found[group] ??= {})[key] = prop.default;
        if (prop.properties) walk(`${group}_${key}`, prop.properties, depth + 1);
      }
    };
    for (const [name, def] of Object.entries(SCHEMA.definitions)) walk(name, def.properties, 0);
    expect(found.response_csv).toEqual({ delimiter: ",", header: true });
    for (const [group, values] of Object.entries(found))
      expect((DEFAULTS as Record<string, unknown>)[group], group).toEqual(values);
  });
});
