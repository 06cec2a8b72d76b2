// A throwaway Redis server for the queue tests (vitest globalSetup) and bench/queue.mjs: Debian's
// `redis-server` on a free 127.0.0.1 port, no persistence (`--save "" --appendonly no`), its
// working folder a temporary one, stopped and deleted by `stop()`.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "../helpers/free-port.mjs";

/** The redis-server binary: REDIS_SERVER, or `redis-server` on the PATH. */
export function findRedisServer() {
  const bin = process.env.REDIS_SERVER || "redis-server";
  const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
  if (r.status !== 0) {
    throw new Error(
      "redis-server not found: the queue tests and bench need a real Redis. " +
        "Install it (Debian/Ubuntu: `apt-get install -y redis-server`; .ci/run does this) or set REDIS_SERVER to its path.",
    );
  }
  return bin;
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = createConnection({ host: "127.0.0.1", port }, () => {
      s.end();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}

/** Starts a server; `{ url, port, dir, stop }`. */
export async function startRedis() {
  const bin = findRedisServer();
  const dir = mkdtempSync(path.join(tmpdir(), "pipelines-redis-"));
  const port = await freePort();
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  args.push("--dir", dir, "--daemonize", "no", "--loglevel", "warning");
  const child = spawn(bin, args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  let exited = false;
  child.on("exit", () => {
    exited = true;
  });
  const deadline = Date.now() + 10_000;
  while (!(await canConnect(port))) {
    if (exited || Date.now() > deadline) {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`redis-server did not start on port ${port}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const stop = async () => {
    if (!exited) {
      const gone = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await Promise.race([gone, new Promise((r) => setTimeout(r, 3000))]);
      if (!exited) child.kill("SIGKILL");
    }
    rmSync(dir, { recursive: true, force: true });
  };
  return { url: `redis://127.0.0.1:${port}/0`, port, dir, stop };
}
