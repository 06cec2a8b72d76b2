import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../../src/cli/main.js";
import { terminalText } from "../../src/shared/terminal.js";
import { runCli } from "../cli/helpers.js";
import { closeServer, listenLocal, sourceBlock, type TempProject, tempProject } from "../run/helpers.js";

// A hostile API: a non-JSON body full of terminal escapes (colour, window title, bell), and
// records whose field name clears the screen.
const BODY = "\x1b[31mRED\x1b]0;title\x07";
const FIELD = "x\x1b[2Jy";
const C1 = "\u009b2J"; // CSI as one C1 character: JSON.stringify leaves it raw
const ESC = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

let server: Server;
let base: string;
let project: TempProject;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url?.startsWith("/html")) {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(BODY);
      return;
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify([{ id: 1, [FIELD]: 1, [`c1${C1}`]: 2 }]));
  });
  base = await listenLocal(server);
  project = tempProject("pipelines-terminal-");
  project.pipeline(
    "hostile",
    [
      sourceBlock(base),
      "streams:",
      "  broken: { path: /html }",
      "  drifted: { path: /items, schema: item.schema.json }",
    ].join("\n"),
  );
  writeFileSync(
    project.file("schemas/item.schema.json"),
    JSON.stringify({ type: "object", properties: { id: { type: "integer" } } }),
  );
});

afterAll(async () => {
  await closeServer(server);
  project.cleanup();
});

/** No terminal control character other than newline and tab. */
function expectNoControls(text: string): void {
  const m = ESC.exec(text);
  expect(
    m,
    m
      ? `control character U+${m[0].charCodeAt(0).toString(16)} at ${m.index}: ${JSON.stringify(text.slice(Math.max(0, m.index - 40), m.index + 40))}`
      : "",
  ).toBeNull();
}

describe("text from the API is printed with its control characters made visible", () => {
  it("terminalText escapes C0, DEL, C1 and bidi controls, keeps newline, tab and other text", () => {
    expect(terminalText(BODY)).toBe("\\u001b[31mRED\\u001b]0;title\\u0007");
    expect(terminalText("a\tb\nc\rd\x7f\u009b\u202e\u2067é€")).toBe(
      "a\tb\nc\\u000dd\\u007f\\u009b\\u202e\\u2067é€",
    );
    const plain = "12 pages · 2,400 records";
    expect(terminalText(plain)).toBe(plain);
  });

  it("run (plain progress and summary) and run --json", async () => {
    const r = await runCli(["run", "hostile"], project.dir);
    expect(r.code).toBe(1);
    expectNoControls(r.stderr);
    expect(r.stderr).toContain("\\u001b[31mRED\\u001b]0;title\\u0007");
    expect(r.stderr).toContain("x\\u001b[2Jy");

    const j = await runCli(["run", "hostile", "--json"], project.dir);
    expectNoControls(j.stdout);
    expectNoControls(j.stderr);
    // The JSON escapes are JSON's own: the parsed summary holds the API's text as it was.
    const summary = JSON.parse(j.stdout) as {
      streams: { name: string; error: { message: string } | null }[];
    };
    expect(summary.streams.find((s) => s.name === "broken")?.error?.message).toContain(BODY);
  });

  it("report (text) and report --json", async () => {
    await runCli(["run", "hostile"], project.dir);
    const r = await runCli(["report", "hostile"], project.dir);
    expect(r.code).toBe(0);
    expectNoControls(r.stdout);
    expect(r.stdout).toContain("x\\u001b[2Jy");
    expect(r.stdout).toContain("c1\\u009b2J");

    const j = await runCli(["report", "hostile", "--json"], project.dir);
    expectNoControls(j.stdout);
    const text = JSON.stringify(JSON.parse(j.stdout));
    expect(text).toContain(JSON.stringify(FIELD).slice(1, -1));
    expect(text).toContain(`c1${C1}`); // \u009b in the output is the same JSON string
  });

  it("the listr2 view on a terminal keeps its own escapes and escapes the API's", async () => {
    let stderr = "";
    const tty = (write: (s: string) => void) => ({ write, isTTY: true, columns: 120 });
    const code = await run(["run", "hostile"], {
      stdout: tty(() => {}),
      stderr: tty((s) => {
        stderr += s;
      }),
      cwd: project.dir,
      env: {},
    });
    expect(code).toBe(1);
    expect(stderr).toContain("\\u001b[31mRED\\u001b]0;title\\u0007");
    expect(stderr).not.toContain(BODY);
    expect(stderr).not.toContain("\x1b[2J");
    expect(stderr).not.toContain("\x07");
    // listr2 still draws with escapes of its own (cursor moves, erase line).
    expect(stderr).toMatch(/\x1b\[\d*[A-Z]/);
  });
});
