import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readDotenv } from "../../src/config/dotenv.js";
import { tempDir, writeFiles } from "./helpers.js";

describe("readDotenv", () => {
  const { dir, cleanup } = tempDir();
  afterAll(cleanup);

  it("reads the cases the README promises, and those util.parseEnv would get wrong", () => {
    writeFiles(dir, {
      ".env": [
        "# a comment",
        "PLAIN=value # trailing comment",
        "export EXPORTED=1",
        'DOUBLE="line\\nbreak"',
        "SINGLE='kept \\n as is'",
        // util.parseEnv gives `pa` and `say \` for these two.
        "HASH=pa#ss",
        'ESCAPED="say \\"hi\\""',
        "",
      ].join("\n"),
    });
    expect(readDotenv(path.join(dir, ".env"))).toEqual({
      PLAIN: "value",
      EXPORTED: "1",
      DOUBLE: "line\nbreak",
      SINGLE: "kept \\n as is",
      HASH: "pa#ss",
      ESCAPED: 'say "hi"',
    });
  });

  it("gives {} without a file", () => {
    expect(readDotenv(path.join(dir, "missing.env"))).toEqual({});
  });
});
