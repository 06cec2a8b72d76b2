// A throwaway PostgreSQL cluster for the tests (vitest globalSetup) and the bench: `initdb` in a
// temporary folder, `pg_ctl start` on a free 127.0.0.1 port with its unix socket inside that
// folder, stopped and deleted by `stop()`. PostgreSQL refuses to run as root: as root, the folder
// is given to the `postgres` user and every command runs through `runuser -u postgres`.
//
// Roles: `pipelines` (superuser, trust over TCP from 127.0.0.1) and `pw_user` (password
// `PW_PASSWORD`, scram-sha-256), to test authentication failures.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "../helpers/free-port.mjs";

export const PW_USER = "pw_user";
export const PW_PASSWORD = "s3cret-Pa55word";

/** Debian's binaries: /usr/lib/postgresql/<highest version>/bin, or PG_BIN, or pg_config's. */
export function findPgBin() {
  const candidates = [];
  if (process.env.PG_BIN) candidates.push(process.env.PG_BIN);
  const base = "/usr/lib/postgresql";
  if (existsSync(base)) {
    const versions = readdirSync(base)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(path.join(base, v, "bin"));
  }
  const cfg = spawnSync("pg_config", ["--bindir"], { encoding: "utf8" });
  if (cfg.status === 0) candidates.push(cfg.stdout.trim());
  const found = candidates.find(
    (d) => existsSync(path.join(d, "initdb")) && existsSync(path.join(d, "pg_ctl")),
  );
  if (!found) {
    throw new Error(
      "PostgreSQL server binaries (initdb, pg_ctl) not found: the postgres output tests and bench need a real server. " +
        "Install it (Debian/Ubuntu: `apt-get install -y postgresql`; .ci/run does this) or set PG_BIN to the folder holding initdb.",
    );
  }
  return found;
}

/** Starts a cluster; `{ url, adminUrl, pwUrl, port, dir, stop }`. */
export async function startCluster() {
  const bin = findPgBin();
  const root = process.getuid?.() === 0;
  const dir = mkdtempSync(path.join(tmpdir(), "pipelines-pg-"));
  const data = path.join(dir, "data");
  const sock = path.join(dir, "sock");
  const run = (cmd, args) => {
    const full = path.join(bin, cmd);
    const [c, a] = root ? ["runuser", ["-u", "postgres", "--", full, ...args]] : [full, args];
    const r = spawnSync(c, a, { encoding: "utf8", cwd: dir });
    if (r.status !== 0)
      throw new Error(
        `${cmd} failed (${r.status}): ${r.stderr || r.stdout}${r.error ? r.error.message : ""}`,
      );
    return r.stdout;
  };
  try {
    execFileSync("mkdir", ["-p", sock]);
    if (root) execFileSync("chown", ["-R", "postgres:postgres", dir]);
    run("initdb", ["-D", data, "-U", "pipelines", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"]);
    const hba = [
      "local all all trust",
      `host all ${PW_USER} 127.0.0.1/32 scram-sha-256`,
      "host all all 127.0.0.1/32 trust",
      "",
    ].join("\n");
    writeFileSync(path.join(data, "pg_hba.conf"), hba);
    const port = await freePort();
    const opts = [
      `-p ${port}`,
      `-k ${sock}`,
      "-c listen_addresses=127.0.0.1",
      "-c fsync=off",
      "-c full_page_writes=off",
      "-c synchronous_commit=off",
      "-c max_connections=200",
      "-c shared_buffers=32MB",
    ].join(" ");
    run("pg_ctl", ["-D", data, "-o", opts, "-l", path.join(dir, "server.log"), "-w", "-t", "60", "start"]);
    const adminUrl = `postgres://pipelines@127.0.0.1:${port}/postgres`;
    const stop = () => {
      try {
        run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    };
    const { default: pg } = await import("pg");
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    await c.query(`CREATE ROLE ${PW_USER} LOGIN PASSWORD '${PW_PASSWORD}'`);
    await c.end();
    return {
      port,
      dir,
      adminUrl,
      pwUrl: `postgres://${PW_USER}:${encodeURIComponent(PW_PASSWORD)}@127.0.0.1:${port}/postgres`,
      stop,
    };
  } catch (err) {
    try {
      run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
    } catch {}
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** A new, empty database on the cluster; its URL. */
export async function createDatabase(adminUrl, name) {
  const { default: pg } = await import("pg");
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
  } finally {
    await c.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${encodeURIComponent(name)}`;
  return u.toString();
}
