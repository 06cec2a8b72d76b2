// biome-ignore-all lint/suspicious/noTemplateCurlyInString: pipeline files use `${…}` templates
/**
 * Nothing commits after Ctrl-C/SIGTERM, in a stream that commits unit by unit (windows, append)
 * too: a unit fetched before the signal but not yet committed when it came (it waited for an
 * earlier unit's commit, held here by a lock on the PostgreSQL table) is not committed after it.
 */
import { createServer, type Server } from "node:http";
import pg from "pg";
import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import { freshDatabase, query } from "../pg/helpers.js";
import { closeServer, listenLocal, streamSession, type TempProject, tempProject } from "./helpers.js";

let server: Server;
let url: string;
let db: string;
beforeAll(async () => {
  db = await freshDatabase("intcp");
  server = createServer((req, res) => {
    const day = new URL(req.url ?? "/", "http://x").searchParams.get("from") ?? "";
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ events: [{ day }] }));
  });
  url = await listenLocal(server);
});
afterAll(() => closeServer(server));

let p: TempProject;
beforeEach(() => {
  p = tempProject("pipelines-interrupt-checkpoint-");
  return () => p.cleanup();
});

async function run(signal: AbortSignal) {
  const text = `source:
  base_url: ${url}
  concurrency: 2
streams:
  events:
    path: /events
    params: { from: "\${window.start}" }
    records: $.events
    windows: { step: 1d, start: 2024-01-01, end: 2024-01-03, format: date }
output:
  format: postgres
  url: \${env.DATABASE_URL}
  mode: append
`;
  const env = { DATABASE_URL: db };
  const session = streamSession(p.dir, text, { env, signal });
  // fullRefresh: every window again
  const { running, result } = session.start(0, { concurrency: 2, fullRefresh: true, signal });
  try {
    await running;
  } finally {
    await session.close();
  }
  return result;
}

const perDay = async () =>
  Object.fromEntries(
    (
      await query<{ day: string; n: number }>(db, "SELECT day, count(*)::int AS n FROM events GROUP BY day")
    ).map((r) => [r.day, r.n]),
  );

it("a unit waiting for an earlier unit's commit at the signal is not committed after it", async () => {
  const first = await run(new AbortController().signal);
  expect(first.status, JSON.stringify(first.error)).toBe("ok");
  expect(await perDay()).toEqual({ "2024-01-01": 1, "2024-01-02": 1 });

  // The table is locked: the first window's rows wait for it, the second window is fetched meanwhile.
  const lock = new pg.Client({ connectionString: db });
  await lock.connect();
  const signal = new AbortController();
  let running: Promise<unknown> | null = null;
  try {
    await lock.query("BEGIN");
    await lock.query("LOCK TABLE events IN ACCESS EXCLUSIVE MODE");
    running = run(signal.signal);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const waiting = await query(
        db,
        "SELECT 1 FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'events' AND NOT l.granted",
      );
      if (waiting.length) break;
      if (Date.now() > deadline) throw new Error("the run never waited for the table");
      await new Promise((r) => setTimeout(r, 20));
    }
    signal.abort(new Error("interrupted by SIGINT"));
    await lock.query("COMMIT");
  } finally {
    await lock.end();
  }
  const second = (await running) as Awaited<ReturnType<typeof run>>;
  expect(second.error?.kind).toBe("aborted");
  // The second window (fetched before the signal, waiting for the first one's commit) committed nothing.
  expect((await perDay())["2024-01-02"]).toBe(1);
});
