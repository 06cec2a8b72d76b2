/** The state store (state/state-store.ts) and writeAtomic (shared/atomic-write.ts) on their own. */
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MAX_BYTES } from "../../src/config/read-bounded.js";
import { writeAtomic } from "../../src/shared/atomic-write.js";
import { checkState, StateFileError, StateStore } from "../../src/state/state-store.js";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), "pipelines-state-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("writeAtomic", () => {
  it("creates the folder, writes the whole text with mode 0600, and leaves no temporary file", async () => {
    const file = path.join(dir, "a", "b", "s.json");
    await writeAtomic(file, "one\n");
    await writeAtomic(file, "two\n");
    expect(readFileSync(file, "utf8")).toBe("two\n");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(path.dirname(file))).toEqual(["s.json"]);
    await writeAtomic(path.join(dir, "r.json"), "x", 0o644);
    expect(statSync(path.join(dir, "r.json")).mode & 0o777).toBe(0o644);
  });

  it("writes through `.<name>.<pid>.<time>.tmp` beside the target (the name the run lock's cleanup looks for)", async () => {
    // The target is a folder: the rename fails and the temporary file shows its name.
    mkdirSync(path.join(dir, "blocked"));
    await expect(writeAtomic(path.join(dir, "blocked"), "new")).rejects.toThrow();
    const tmp = readdirSync(dir).filter((n) => n !== "blocked");
    expect(tmp).toHaveLength(1);
    expect(tmp[0]).toMatch(new RegExp(`^\\.blocked\\.${process.pid}\\.\\d+\\.tmp$`));
    expect(readFileSync(path.join(dir, tmp[0]), "utf8")).toBe("new");
  });
});

describe("StateStore", () => {
  it("no file: version 1; update writes pretty JSON with updated_at, and read returns it", async () => {
    const store = new StateStore(dir, "p");
    expect(store.file).toBe(path.join(dir, "p.json"));
    expect(await store.read()).toEqual({ version: 1 });
    await store.update((s) => ({ ...s, streams: { a: { cursor: 5, updated_at: "t" } } }));
    const text = readFileSync(store.file, "utf8");
    expect(text.endsWith("\n")).toBe(true);
    expect(text).toContain('\n  "streams"');
    const state = await store.read();
    expect(state.streams).toEqual({ a: { cursor: 5, updated_at: "t" } });
    expect(typeof state.updated_at).toBe("string");
    expect(Number.isNaN(Date.parse(state.updated_at!))).toBe(false);
  });

  it("an update that returns nothing keeps the state (and still stamps it)", async () => {
    const store = new StateStore(dir, "p");
    await store.update((s) => ({ ...s, auth: { refresh_token: "rt" } }));
    await store.update(() => undefined);
    expect((await store.read()).auth).toEqual({ refresh_token: "rt" });
  });

  it("updates are serialized: none is lost, and a failed one does not stop the next", async () => {
    const store = new StateStore(dir, "p");
    const writes = Array.from({ length: 10 }, (_, i) =>
      store.update((s) => ({ ...s, streams: { ...s.streams, [`s${i}`]: { cursor: i, updated_at: "t" } } })),
    );
    const failed = store.update(() => {
      throw new Error("boom");
    });
    await Promise.all(writes);
    await expect(failed).rejects.toThrow("boom");
    await store.update((s) => ({ ...s, auth: { refresh_token: "after" } }));
    const state = await store.read();
    expect(Object.keys(state.streams!)).toHaveLength(10);
    expect(state.auth?.refresh_token).toBe("after");
  });

  it("not JSON: a StateFileError with the line and column, never the text", async () => {
    writeFileSync(path.join(dir, "p.json"), '{\n  "auth": { "refresh_token": "rt_secret" },\n  oops\n}');
    const err = await new StateStore(dir, "p").read().catch((e) => e);
    expect(err).toBeInstanceOf(StateFileError);
    expect(err.file).toBe(path.join(dir, "p.json"));
    expect(err.problem).toMatch(/^is not valid JSON \(line 3, column 3\)$/);
    expect(err.message).toBe(`state file ${path.join(dir, "p.json")} ${err.problem}`);
    expect(err.message).not.toContain("rt_secret");
  });

  it("an empty file is not valid JSON (no position to give); a file over MAX_BYTES.state (64 MiB: 100,000 partitions take ~5 MB) is too large for a state file", async () => {
    writeFileSync(path.join(dir, "p.json"), "");
    const err = await new StateStore(dir, "p").read().catch((e) => e);
    expect(err.problem).toBe("is not valid JSON");
    writeFileSync(path.join(dir, "p.json"), `{"x":"${"a".repeat(MAX_BYTES.state)}"}`);
    const big = await new StateStore(dir, "p").read().catch((e) => e);
    expect(big).toBeInstanceOf(StateFileError);
    expect(big.problem).toContain("a state file");
  });

  it("wrong shape, a symbolic link, a folder: StateFileError", async () => {
    writeFileSync(path.join(dir, "p.json"), '{"version": 2}');
    await expect(new StateStore(dir, "p").read()).rejects.toThrow(
      "has an unexpected shape: `version`: expected 1, found 2",
    );
    writeFileSync(path.join(dir, "real.json"), '{"version": 1}');
    symlinkSync(path.join(dir, "real.json"), path.join(dir, "q.json"));
    await expect(new StateStore(dir, "q").read()).rejects.toBeInstanceOf(StateFileError);
    mkdirSync(path.join(dir, "f.json"));
    await expect(new StateStore(dir, "f").read()).rejects.toBeInstanceOf(StateFileError);
  });
});

describe("checkState", () => {
  it.each([
    [{ version: 1 }, null],
    [{}, null],
    [
      { version: 1, updated_at: "t", streams: { a: { cursor: "c" }, b: { cursor: 2 }, c: { cursor: null } } },
      null,
    ],
    [{ streams: { a: {} }, auth: {}, extra: [1] }, null],
    [{ auth: { refresh_token: "r" } }, null],
    [[], 'expected a map like {"version": 1, "streams": {…}}, found a list'],
    [null, 'expected a map like {"version": 1, "streams": {…}}, found null'],
    ["x", 'expected a map like {"version": 1, "streams": {…}}, found a string'],
    [{ version: "1" }, "`version`: expected 1, found a string (written by another version of pipelines?)"],
    [{ version: 2 }, "`version`: expected 1, found 2 (written by another version of pipelines?)"],
    [{ updated_at: 5 }, "`updated_at`: expected a string, found a number"],
    [{ streams: [] }, "`streams`: expected a map, found a list"],
    [{ streams: { a: 1 } }, "`streams.a`: expected a map, found a number"],
    [{ streams: { a: { cursor: {} } } }, "`streams.a.cursor`: expected a string or a number, found a map"],
    [
      { streams: { a: { cursor: true } } },
      "`streams.a.cursor`: expected a string or a number, found a boolean",
    ],
    [{ streams: { a: { updated_at: 1 } } }, "`streams.a.updated_at`: expected a string, found a number"],
    [
      { streams: { "a b": { cursor: [] } } },
      '`streams["a b"].cursor`: expected a string or a number, found a list',
    ],
    [{ streams: { "x\u0085": 1 } }, '`streams["x\\u0085"]`: expected a map, found a number'],
    [{ auth: "x" }, "`auth`: expected a map, found a string"],
    [{ auth: { refresh_token: 1 } }, "`auth.refresh_token`: expected a string, found a number"],
  ])("%j → %s", (state, problem) => {
    expect(checkState(state)).toBe(problem);
  });

  it("a cursor that is not a finite number is refused; a long stream name is cut to 100 characters", () => {
    expect(checkState({ streams: { a: { cursor: Number.POSITIVE_INFINITY } } })).toContain(
      "`streams.a.cursor`",
    );
    const long = "é".repeat(150);
    expect(checkState({ streams: { [long]: 1 } })).toBe(
      `\`streams["${"é".repeat(100)}"]\`: expected a map, found a number`,
    );
    expect(checkState({ streams: { ["a".repeat(100)]: 1 } })).toBe(
      `\`streams.${"a".repeat(100)}\`: expected a map, found a number`,
    );
    expect(checkState({ streams: { ["a".repeat(101)]: 1 } })).toContain('`streams["');
  });
});
