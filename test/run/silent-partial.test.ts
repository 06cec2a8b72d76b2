import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { run } from "../../src/cli/main.js";
import { type SyncServer, startSyncServer } from "../sync/sync-server.js";
import { runPipeline, type TempProject, tempProject } from "./helpers.js";

/**
 * Issue 18: the traps that ended `ok`, exit 0, with a green report, each loud now. A fake of a
 * ticketing API (tickets under `$.tickets`, 100 a page, a `next_page` URL) and of an OData users
 * API (`$top`, `@odata.nextLink`).
 */
let tickets = 230;
const ticket = (id: number) => ({
  id,
  subject: `ticket ${id}`,
  // A number field: decimals, integers, and one string (a real type change).
  priority: id === 7 ? "high" : id % 3 === 0 ? 2 : 1.5,
});

let api: SyncServer;
let project: TempProject;
beforeAll(async () => {
  api = await startSyncServer((req) => {
    if (req.rawPath.startsWith("/tickets")) {
      const page = Number(req.query.page ?? "1");
      const from = (page - 1) * 100;
      const rows = Array.from({ length: Math.max(0, Math.min(100, tickets - from)) }, (_, i) =>
        ticket(from + i + 1),
      );
      const next = from + 100 < tickets ? `${api.url}/tickets?page=${page + 1}` : null;
      return { body: { tickets: rows, next_page: next, count: tickets } };
    }
    if (req.rawPath.startsWith("/users")) {
      const top = Number(req.query.$top ?? "50");
      const skip = Number(req.query.$skip ?? "0");
      const value = Array.from({ length: Math.max(0, Math.min(top, 120 - skip)) }, (_, i) => ({
        id: skip + i + 1,
        displayName: `user ${skip + i + 1}`,
      }));
      const body: Record<string, unknown> = { "@odata.context": "users", value };
      if (skip + top < 120) body["@odata.nextLink"] = `${api.url}/users?$top=${top}&$skip=${skip + top}`;
      return { body };
    }
    return { status: 404, body: { error: "not found" } };
  });
});
afterAll(() => api.close());
beforeEach(() => {
  tickets = 230;
  project = tempProject("pipelines-traps-");
});
afterEach(() => project.cleanup());

function ticketsPipeline(
  opts: { records?: string; fields?: string[]; output?: string[]; extra?: string[] } = {},
) {
  project.pipeline(
    "desk",
    [
      "source:",
      `  base_url: ${api.url}`,
      "streams:",
      "  tickets:",
      "    path: /tickets",
      `    records: ${opts.records ?? "$.tickets"}`,
      "    paginate: { type: next_url, next: $.next_page }",
      ...(opts.fields ? ["    fields:", ...opts.fields.map((f) => `      ${f}`)] : []),
      "output:",
      "  format: csv",
      "  mode: replace",
      ...(opts.output ?? []).map((l) => `  ${l}`),
      ...(opts.extra ?? []),
      "",
    ].join("\n"),
  );
}

const CSV = () => project.file("out/desk/tickets.csv");
const PREVIEW = () => project.file("out/desk/tickets.preview.csv");
const csvRows = (file: string) =>
  readFileSync(file, "utf8")
    .split(/\r?\n/)
    .filter((l) => l !== "").length - 1;
const latestReport = (p: string) =>
  JSON.parse(readFileSync(project.file(`reports/${p}/latest.json`), "utf8"));
const latestHtml = (p: string) => readFileSync(project.file(`reports/${p}/latest.html`), "utf8");

async function goodRun(): Promise<void> {
  ticketsPipeline();
  const r = await runPipeline(project.dir, "desk");
  expect(r.code, r.stderr).toBe(0);
  expect(csvRows(CSV())).toBe(230);
}

describe("trap 1: `records: $.ticket` (a typo) on a replace CSV", () => {
  it("does not replace the good file: exit 3, named suspicion naming `$.tickets`, output kept beside", async () => {
    await goodRun();
    const before = readFileSync(CSV());
    ticketsPipeline({ records: "$.ticket" });
    const r = await runPipeline(project.dir, "desk");
    // Before: exit 0, status ok, and tickets.csv replaced by an empty file with no header.
    expect(r.code, r.stderr).toBe(3);
    const s = r.stream("tickets") as ReturnType<typeof r.stream> & {
      suspicions: { code: string; message: string; decides: boolean }[];
    };
    expect(s.status).toBe("rejected");
    expect(s.records.written).toBe(0);
    const found = s.suspicions.find((x) => x.code === "records_path_matched_nothing");
    expect(found?.decides).toBe(true);
    expect(found?.message).toContain("`$.tickets` has 100 objects");
    expect(s.suspicions.map((x) => x.code)).toContain("empty_replace");
    expect(readFileSync(CSV())).toEqual(before);
    expect(existsSync(PREVIEW())).toBe(true);
    expect(r.stderr).toContain("SUSPICIOUS (records_path_matched_nothing");
    const report = latestReport("desk");
    expect(report.exit_code).toBe(3);
    expect(report.streams[0].output.committed).toBe(false);
    expect(latestHtml("desk")).not.toContain('class="overall st-ok"');
  });

  it("an empty replace with a clean body is also refused, unless output.allow_empty or --commit-partial", async () => {
    await goodRun();
    tickets = 0;
    const r = await runPipeline(project.dir, "desk");
    expect(r.code, r.stderr).toBe(3);
    expect(csvRows(CSV())).toBe(230);
    const forced = await runPipeline(project.dir, "desk", ["--commit-partial"]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(existsSync(CSV()) ? readFileSync(CSV(), "utf8").trim() : "").not.toContain("ticket 1");

    tickets = 230;
    await goodRun();
    tickets = 0;
    ticketsPipeline({ output: ["allow_empty: true"] });
    const allowed = await runPipeline(project.dir, "desk");
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stream("tickets").output).not.toBeNull();
  });
});

describe("trap 2: `next: $.odata.nextLink` (a typo for `$['@odata.nextLink']`)", () => {
  it("names the suspicion: a full first page and no pointer, with the member that holds one", async () => {
    const pipeline = (next: string) =>
      project.pipeline(
        "graph",
        [
          "source:",
          `  base_url: ${api.url}`,
          "streams:",
          "  users:",
          "    path: /users",
          "    params: { $top: 50 }",
          "    records: $.value",
          `    paginate: { type: next_url, next: "${next}" }`,
          "",
        ].join("\n"),
      );
    pipeline("$['@odata.nextLink']");
    const good = await runPipeline(project.dir, "graph");
    expect(good.stream("users").records.written).toBe(120);
    expect((good.stream("users") as unknown as { suspicions: unknown[] }).suspicions).toEqual([]);

    pipeline("$.odata.nextLink");
    const r = await runPipeline(project.dir, "graph");
    const s = r.stream("users") as unknown as {
      records: { written: number };
      suspicions: { code: string; message: string }[];
    };
    // Before: 50 of 120 users, exit 0, no warning, a green report.
    expect(s.records.written).toBe(50);
    const found = s.suspicions.find((x) => x.code === "next_path_missing");
    expect(found?.message).toContain("page 1 was full (50 records, `$top=50` asked)");
    expect(found?.message).toContain("probably a wrong `next` path".replace("probably", "Probably"));
    expect(found?.message).toContain("`$['@odata.nextLink']`");
    expect(r.stderr).toContain("SUSPICIOUS (next_path_missing)");
    expect(latestHtml("graph")).toContain('class="banner st-suspicious"');
    expect(latestHtml("graph")).not.toContain('class="overall st-ok"');
  });
});

describe("trap 3: a field path typo (`$.subjekt`)", () => {
  it("warns: the field was null in 100% of records, probably a wrong path", async () => {
    ticketsPipeline({ fields: ["id: $.id", "subject: $.subjekt"] });
    const r = await runPipeline(project.dir, "desk");
    expect(r.code, r.stderr).toBe(0);
    const s = r.stream("tickets") as unknown as { suspicions: { code: string; message: string }[] };
    // Before: no warning at all.
    expect(s.suspicions).toEqual([
      {
        code: "field_always_null",
        decides: false,
        message: "field `subject` (`$.subjekt`) was null in 100% of 230 records: probably a wrong path",
      },
    ]);
    expect(latestReport("desk").streams[0].suspicions[0].code).toBe("field_always_null");
  });
});

describe("trap 4: `--limit 5` in replace mode on a 230-row CSV", () => {
  it("keeps the full file and writes the 5 rows beside; --commit-partial replaces it", async () => {
    await goodRun();
    const r = await runPipeline(project.dir, "desk", ["--limit", "5"]);
    // Before: exit 0 and tickets.csv replaced with 5 rows.
    expect(r.code, r.stderr).toBe(0);
    expect(csvRows(CSV())).toBe(230);
    expect(csvRows(PREVIEW())).toBe(5);
    expect(r.stream("tickets").warnings.join(" ")).toContain("not committed: a run made with --limit 5");
    expect(r.stderr).toContain("tickets.preview.csv");
    expect(latestReport("desk").streams[0].output.committed).toBe(false);

    const forced = await runPipeline(project.dir, "desk", ["--limit", "5", "--commit-partial"]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(csvRows(CSV())).toBe(5);
  });

  it("--max-pages 1 is kept beside the same way", async () => {
    await goodRun();
    const r = await runPipeline(project.dir, "desk", ["--max-pages", "1"]);
    expect(r.code, r.stderr).toBe(0);
    expect(csvRows(CSV())).toBe(230);
    expect(csvRows(PREVIEW())).toBe(100);
  });
});

describe("volume against the last committed run (history in the state folder)", () => {
  it("a drop of more than 90% is not committed (exit 3); max_volume_drop: 1 turns it off", async () => {
    await goodRun();
    tickets = 20;
    const r = await runPipeline(project.dir, "desk");
    expect(r.code, r.stderr).toBe(3);
    const s = r.stream("tickets") as unknown as { suspicions: { code: string; message: string }[] };
    expect(s.suspicions[0].code).toBe("volume_drop");
    expect(s.suspicions[0].message).toContain(
      "20 records written, 91.3% fewer than the 230 of the last committed run",
    );
    expect(csvRows(CSV())).toBe(230);
    ticketsPipeline({ output: ["max_volume_drop: 1"] });
    const off = await runPipeline(project.dir, "desk");
    expect(off.code, off.stderr).toBe(0);
    expect(csvRows(CSV())).toBe(20);
  });
});

describe("number vs integer (JSON Schema: an integer is a number)", () => {
  it("a `number` field with integer values lists no `integer` type change", async () => {
    writeFileSync(
      project.file("schemas/desk.tickets.schema.json"),
      JSON.stringify({
        type: "object",
        properties: { id: { type: "integer" }, subject: { type: "integer" }, priority: { type: "number" } },
      }),
    );
    ticketsPipeline({ extra: [] });
    const text = readFileSync(project.file("pipelines/desk.yaml"), "utf8").replace(
      "    paginate:",
      "    schema: desk.tickets.schema.json\n    paginate:",
    );
    writeFileSync(project.file("pipelines/desk.yaml"), text);
    const r = await runPipeline(project.dir, "desk");
    const changes = latestReport("desk").streams[0].drift.type_changes as {
      field: string;
      actual: Record<string, number>;
    }[];
    // priority holds 1.5, 2 and "high": before, `priority (number×153 integer×76 string×1)`.
    expect(changes.find((c) => c.field === "priority")?.actual).toEqual({ number: 229, string: 1 });
    expect(r.stderr).toContain("priority (number×229 string×1)");
    expect(r.stderr).not.toContain("integer×");
  });
});

describe("--preview [N]", () => {
  it("prints the first N records as a table and commits nothing", async () => {
    ticketsPipeline();
    let stdout = "";
    let stderr = "";
    const code = await run(["run", "desk", "--preview", "3"], {
      stdout: { write: (s: string) => (stdout += s) },
      stderr: { write: (s: string) => (stderr += s) },
      cwd: project.dir,
      env: {},
    });
    expect(code, stderr).toBe(0);
    expect(stdout).toContain("desk.tickets: first 3 records");
    expect(stdout).toMatch(/id\s+subject\s+priority/);
    expect(stdout).toContain("ticket 3");
    expect(stdout).not.toContain("ticket 4");
    expect(existsSync(project.file("out"))).toBe(false);
    expect(existsSync(project.file("reports"))).toBe(false);
  });
});

describe("reports.keep", () => {
  it("keeps the reports of the last N runs and the history of as many", async () => {
    ticketsPipeline({ extra: ["reports: { keep: 2 }"] });
    for (let i = 0; i < 3; i++) expect((await runPipeline(project.dir, "desk")).code).toBe(0);
    const files = readdirSync(project.file("reports/desk")).sort();
    expect(files.filter((f) => f.startsWith("latest."))).toEqual(["latest.html", "latest.json"]);
    expect(files.filter((f) => !f.startsWith("latest."))).toHaveLength(4);
    const report = latestReport("desk");
    expect(report.history).toHaveLength(2);
    expect(report.history[1].run_id).toBe(report.run_id);
    expect(report.previews.tickets).toHaveLength(5);
  });
});
