// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files use `${…}` templates
/**
 * `run --queue` fails loudly and early: Redis unreachable (exit 1, nothing sent, the URL's
 * password never shown), a worker whose pipeline file differs from the submitter's refuses the
 * job with a clear message, and outputs one process writes (duckdb, sqlite) are refused.
 */
import { existsSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt } from "../built.js";
import { runCli } from "../cli/helpers.js";
import { closeServer, listenLocal, runPipeline, sourceBlock, tempProject } from "../run/helpers.js";
import { redisUrl, startWorker, writeQueueConfig } from "./helpers.js";
import { startRedis } from "./redis-server.mjs";

let server: Server;
let base: string;
let requests = 0;

beforeAll(async () => {
  await ensureBuilt();
  server = createServer((_req, res) => {
    requests++;
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ data: [{ id: 1 }, { id: 2 }] }));
  });
  base = await listenLocal(server);
}, 180_000);
afterAll(() => closeServer(server));

const pipelineText = (format = "jsonl", extra = "") =>
  [
    sourceBlock(base),
    "streams:",
    "  items:",
    "    path: /items",
    "    records: $.data",
    extra,
    "output:",
    `  format: ${format}`,
    "",
  ].join("\n");

describe("run --queue failures", () => {
  it("Redis unreachable: exit 1 before anything is sent, the password masked", async () => {
    const p = tempProject("pipelines-queue-err-");
    try {
      p.pipeline("p", pipelineText());
      writeQueueConfig(p.dir, "t-errors");
      const closed = await new Promise<number>((resolve) => {
        const s = createServer().listen(0, "127.0.0.1", () => {
          const port = (s.address() as { port: number }).port;
          s.close(() => resolve(port));
        });
      });
      requests = 0;
      const r = await runCli(["run", "p", "--queue"], p.dir, {
        REDIS_URL: `redis://someone:Sup3rSecretPw@127.0.0.1:${closed}/0`,
      });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("unreachable");
      expect(r.stderr).toContain("Nothing was sent");
      expect(r.stderr).not.toContain("Sup3rSecretPw");
      expect(requests).toBe(0);
    } finally {
      p.cleanup();
    }
  });

  it("a Redis that refuses the user or password: exit 1 with Redis's reason, the password masked, nothing sent", async () => {
    const p = tempProject("pipelines-queue-err-");
    try {
      p.pipeline("p", pipelineText());
      writeQueueConfig(p.dir, "t-errors");
      requests = 0;
      const wrong = redisUrl().replace("redis://", "redis://nobody:Sup3rSecretPw@");
      for (const args of [["run", "p", "--queue"], ["status"], ["worker"]]) {
        const r = await runCli(args, p.dir, { REDIS_URL: wrong });
        expect(r.code, args[0]).toBe(1);
        expect(r.stderr, args[0]).toContain("refused the connection: WRONGPASS");
        expect(r.stderr).not.toContain("Connection is closed");
        expect(r.stderr).not.toContain("Sup3rSecretPw");
      }
      expect(requests).toBe(0);
    } finally {
      p.cleanup();
    }
  });

  it("a Redis that refuses writes (full under maxmemory): the run lock is refused with Redis's reason, exit 1, nothing sent", async () => {
    const p = tempProject("pipelines-queue-err-");
    // A Redis of its own: full at once (any write refused).
    const full = await startRedis();
    const admin = new Redis(full.url);
    try {
      await admin.config("SET", "maxmemory", "1");
      await admin.config("SET", "maxmemory-policy", "noeviction");
      p.pipeline("p", pipelineText());
      writeQueueConfig(p.dir, "t-errors-full");
      requests = 0;
      for (const args of [
        ["run", "p"],
        ["run", "p", "--queue"],
      ]) {
        const r = await runCli(args, p.dir, { REDIS_URL: full.url });
        expect(r.code, r.stderr).toBe(1);
        expect(r.stderr).toContain("refused the run lock: OOM command not allowed");
        expect(r.stderr).toContain("Nothing was sent");
        expect(r.stderr).not.toContain("internal error");
      }
      expect(requests).toBe(0);
      // The local lock was let go too: nothing is left in the state folder.
      expect(existsSync(p.file(".pipelines/state/p.lock"))).toBe(false);
    } finally {
      admin.disconnect();
      await full.stop();
      p.cleanup();
    }
  }, 30_000);

  it("an `${env.…}` inside the Redis URL (not the whole value) is a positioned config error, never used as written", async () => {
    const p = tempProject("pipelines-queue-err-");
    try {
      p.pipeline("p", pipelineText());
      const url = redisUrl().replace("redis://", "redis://:${env.REDIS_PASSWORD}@");
      writeFileSync(p.file("pipelines.config.yaml"), `queue:\n  redis: ${url}\n  prefix: t-errors\n`);
      requests = 0;
      for (const args of [["run", "p"], ["run", "p", "--queue"], ["status"]]) {
        const r = await runCli(args, p.dir, { REDIS_PASSWORD: "Sup3rSecretPw" });
        expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2);
        expect(r.stderr).toContain("pipelines.config.yaml:2:10");
        expect(r.stderr).toContain("`queue.redis`");
        expect(r.stderr).not.toContain("Sup3rSecretPw");
      }
      expect(requests).toBe(0);
    } finally {
      p.cleanup();
    }
  });

  it("a Redis URL whose password holds a `%` that starts no escape: a config error, the password masked, nothing sent", async () => {
    const p = tempProject("pipelines-queue-err-");
    try {
      p.pipeline("p", pipelineText());
      writeQueueConfig(p.dir, "t-errors");
      requests = 0;
      const r = await runCli(["run", "p", "--queue"], p.dir, {
        REDIS_URL: "redis://someone:50%offSecretPw@127.0.0.1:6379/0",
      });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("is not a valid URL");
      expect(r.stderr).toContain("%25");
      expect(r.stderr).not.toContain("internal error");
      expect(r.stderr).not.toContain("offSecretPw");
      expect(requests).toBe(0);
    } finally {
      p.cleanup();
    }
  });

  it("refuses --queue without a queue in the project config, and outputs one process writes", async () => {
    const p = tempProject("pipelines-queue-err-");
    try {
      p.pipeline("p", pipelineText());
      const none = await runCli(["run", "p", "--queue"], p.dir, {});
      expect(none.code).toBe(2);
      expect(none.stderr).toContain("queue: { redis:");
      p.pipeline("p", pipelineText("sqlite"));
      writeQueueConfig(p.dir, "t-errors");
      const lite = await runCli(["run", "p", "--queue"], p.dir, { REDIS_URL: redisUrl() });
      expect(lite.code).toBe(2);
      expect(lite.stderr).toContain("writes sqlite");
      // A config error whether Redis answers or not (here nothing listens at the URL).
      const down = await runCli(["run", "p", "--queue"], p.dir, { REDIS_URL: "redis://127.0.0.1:9/0" });
      expect(down.code, down.stderr).toBe(2);
      expect(down.stderr).toContain("writes sqlite");
    } finally {
      p.cleanup();
    }
  });

  it("refuses --record and --preview with --queue (the submitter sends nothing: nothing to record or preview)", async () => {
    const p = tempProject("pipelines-queue-err-");
    try {
      p.pipeline("p", pipelineText());
      writeQueueConfig(p.dir, "t-errors-options");
      requests = 0;
      for (const option of ["--record", "--preview"]) {
        const r = await runCli(["run", "p", "--queue", option], p.dir, { REDIS_URL: redisUrl() });
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toContain(`${option} cannot be used with --queue`);
      }
      // A usage error, whether Redis answers or not (here nothing listens at the URL).
      for (const option of [["--record"], ["--preview"], ["--limit", "1"], ["--singer"]]) {
        const r = await runCli(["run", "p", "--queue", ...option], p.dir, {
          REDIS_URL: "redis://127.0.0.1:9/0",
        });
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toContain(`${option[0]} cannot be used with --queue`);
      }
      expect(requests).toBe(0);
      expect(existsSync(p.file("tests"))).toBe(false);
      expect(existsSync(p.file("out"))).toBe(false);
    } finally {
      p.cleanup();
    }
  });

  it("a worker where the pipeline does not load (an env variable missing there) says which worker and why", async () => {
    const p = tempProject("pipelines-queue-err-");
    try {
      p.pipeline(
        "p",
        pipelineText().replace("source:\n", 'source:\n  auth: { type: bearer, token: "${env.API_TOKEN}" }\n'),
      );
      writeQueueConfig(p.dir, "t-errors-load");
      // The worker's environment has no API_TOKEN (startWorker passes PATH and REDIS_URL only).
      const w = await startWorker(p.dir);
      try {
        requests = 0;
        const r = await runPipeline(p.dir, "p", ["--queue"], {
          REDIS_URL: redisUrl(),
          API_TOKEN: "TokenOnTheSubmitter",
        });
        expect(r.code).toBe(1);
        const error = r.stream("items").error;
        expect(error?.kind).toBe("queue");
        expect(error?.message).toMatch(/^worker \S+:\d+ cannot load pipeline `p` \(1 config error\)/);
        expect(error?.message).toContain("p.yaml:2:");
        expect(error?.message).toContain("missing_env");
        expect(error?.message).toContain("pipelines validate p");
        expect(r.stderr).not.toContain("TokenOnTheSubmitter");
        expect(requests).toBe(0);
      } finally {
        await w.stop();
      }
    } finally {
      p.cleanup();
    }
  }, 60_000);

  it("a refused job fails the stream even under on_partition_error: skip (it is no request that failed)", async () => {
    const text = (extra: string) =>
      [
        sourceBlock(base),
        "streams:",
        "  orgs: { values: [{ id: 1 }, { id: 2 }] }",
        "  items:",
        "    parent: orgs",
        "    path: /items/${parent.id}",
        "    records: $.data",
        "    on_partition_error: skip",
        extra,
        "output: { format: jsonl }",
        "",
      ].join("\n");
    await withWorkerElsewhere(text(""), text("    primary_key: id"), "t-errors-skip", async (submitter) => {
      requests = 0;
      const r = await runPipeline(submitter.dir, "p", ["--queue"], { REDIS_URL: redisUrl() });
      expect(r.code, r.stderr).toBe(1);
      expect(r.stream("items").status).toBe("failed");
      expect(r.stream("items").error?.kind).toBe("queue");
      expect(r.stream("items").error?.message).toContain("differs from the submitter's");
      expect(requests).toBe(0);
      expect(existsSync(submitter.file("out/p/items.jsonl"))).toBe(false);
    });
  }, 60_000);

  it("a worker whose pipeline file differs from the submitter's refuses the job", async () => {
    const elsewhereText = pipelineText("jsonl", "    primary_key: id");
    await withWorkerElsewhere(pipelineText(), elsewhereText, "t-errors-hash", async (submitter) => {
      const r = await runPipeline(submitter.dir, "p", ["--queue"], { REDIS_URL: redisUrl() });
      expect(r.code).toBe(1);
      expect(r.stream("items").error?.kind).toBe("queue");
      expect(r.stream("items").error?.message).toContain("differs from the submitter's");
    });
  }, 60_000);
});

/**
 * A submitter's project with pipeline `p` as `text`, and a worker started in another project
 * where `p` is `workerText` (both on queue prefix `prefix`): `body` runs, then both go.
 */
async function withWorkerElsewhere(
  text: string,
  workerText: string,
  prefix: string,
  body: (submitter: ReturnType<typeof tempProject>) => Promise<void>,
): Promise<void> {
  const submitter = tempProject("pipelines-queue-err-");
  const elsewhere = tempProject("pipelines-queue-err-");
  try {
    submitter.pipeline("p", text);
    elsewhere.pipeline("p", workerText);
    writeQueueConfig(submitter.dir, prefix);
    writeQueueConfig(elsewhere.dir, prefix);
    const w = await startWorker(elsewhere.dir);
    try {
      await body(submitter);
    } finally {
      await w.stop();
    }
  } finally {
    submitter.cleanup();
    elsewhere.cleanup();
  }
}
