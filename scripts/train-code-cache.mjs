// Writes V8 code caches (<name>.v8cache, see src/vendor/load-bundle.ts) for the bundled CLI,
// @duckdb/node-api's bundle and the precompiled validators: runs the built CLI, a `run` into
// DuckDB, `validate` then `run`, on a small project
// against a server on 127.0.0.1, with PIPELINES_WRITE_CODE_CACHE=1. The caches then hold every
// function of yaml, ajv, cosmiconfig, commander, undici and the validators that a start and a
// run compile.
// Run by `npm run build` last. Without caches everything still works, only starts are slower,
// so a failure here is a warning.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = path.join(root, "dist/cli/bin.js");

const PAGES = 3;
const server = http.createServer((req, res) => {
  const page = Number(new URL(req.url, "http://x").searchParams.get("cursor") ?? 0);
  const data = Array.from({ length: 50 }, (_, i) => ({
    id: page * 50 + i,
    email: `user${i}@example.com`,
    created_at: "2026-01-02T03:04:05Z",
    tags: ["a", "b"],
  }));
  res.setHeader("content-type", "application/json");
  res.end(JSON.stringify({ data, next: page + 1 < PAGES ? String(page + 1) : null }));
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const base = `http://127.0.0.1:${server.address().port}`;

const dir = mkdtempSync(path.join(os.tmpdir(), "pipelines-train-"));
try {
  mkdirSync(path.join(dir, "pipelines"));
  mkdirSync(path.join(dir, "schemas"));
  writeFileSync(
    path.join(dir, "schemas/record.schema.json"),
    JSON.stringify({
      $schema: "http://json-schema.org/draft-07/schema#",
      type: "object",
      required: ["id"],
      properties: {
        id: { type: "integer" },
        email: { type: "string", format: "email" },
        created_at: { type: "string", format: "date-time" },
        tags: { type: "array", items: { type: "string" } },
      },
    }),
  );
  const pipeline = (format) => `source: { base_url: "${base}", retry: { max_attempts: 2 } }
streams:
  records:
    path: /items
    records: $.data
    paginate: { type: cursor, cursor: $.next }
    schema: record.schema.json
output: { format: ${format} }
`;
  writeFileSync(path.join(dir, "pipelines/train.yaml"), pipeline("jsonl"));
  // Run first (its pipelines.v8cache is replaced by the runs after it): trains the cache of
  // @duckdb/node-api's bundle (dist/app/duckdb-api.cjs, src/vendor/duckdb-api.ts).
  writeFileSync(path.join(dir, "pipelines/train-duck.yaml"), pipeline("duckdb"));
  // Only validated, so that the 2020-12 meta-schema validator is trained too.
  writeFileSync(
    path.join(dir, "pipelines/train-2020.yaml"),
    `source: { base_url: "${base}" }
streams:
  records:
    path: /items
    records: $.data
    schema: { $schema: "https://json-schema.org/draft/2020-12/schema", type: object, properties: { id: { type: integer } } }
`,
  );
  const env = { ...process.env, PIPELINES_WRITE_CODE_CACHE: "1", CI: "1" };
  for (const args of [["run", "train-duck"], ["validate"], ["run", "train"]]) {
    // Async spawn: the server answers from this process's event loop.
    let stderr = "";
    const code = await new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [bin, ...args], {
        cwd: dir,
        env,
        stdio: ["ignore", "ignore", "pipe"],
      });
      child.stderr.on("data", (d) => (stderr += d));
      // A hung child must not hang the build.
      const timer = setTimeout(() => child.kill(), 60_000);
      child.on("error", reject);
      child.on("close", (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    if (code !== 0) throw new Error(`pipelines ${args.join(" ")} exited with ${code}:\n${stderr}`);
  }
  const caches = ["app", "config", "lang"].flatMap((d) =>
    readdirSync(path.join(root, "dist", d))
      .filter((f) => f.endsWith(".v8cache"))
      .map((f) => `dist/${d}/${f}`),
  );
  console.log(`code caches: ${caches.join(", ")}`);
} catch (err) {
  console.warn(`warning: no code caches (starts will be slower): ${err.message}`);
} finally {
  server.close();
  rmSync(dir, { recursive: true, force: true });
}
