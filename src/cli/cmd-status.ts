import { Queue } from "bullmq";
import { connect, shownRedis } from "../queue/connection.js";
import { UNITS_QUEUE } from "../queue/jobs.js";
import { SCHEDULES_QUEUE } from "../queue/schedules.js";
import { projectFor } from "./context.js";
import { type CliIO, EXIT } from "./io.js";
import { projectQueue } from "./queue-run.js";

/** `pipelines status`: the queue's workers, running runs, queued jobs and next scheduled times. */
export async function statusCommand(io: CliIO, opts: { json?: boolean }): Promise<number> {
  const project = await projectFor(io);
  const cfg = await projectQueue(
    io,
    project,
    "no queue configured: `pipelines status` shows the queue's workers and runs",
  );
  const redis = connect(cfg);
  const units = new Queue(UNITS_QUEUE, { connection: redis, prefix: cfg.prefix });
  const schedules = new Queue(SCHEDULES_QUEUE, { connection: redis, prefix: cfg.prefix });
  try {
    // BullMQ names each client by its queue (`name`); the worker's own name follows `:w:` in `rawname`.
    // A `pipelines worker` process runs several BullMQ workers (cmd-worker.ts `lanes`), all under
    // its name: one entry per name and client host (containers may share a host name and pid),
    // up since its oldest.
    const byName = new Map<string, { name: string; addr: string; age_s: number }>();
    for (const w of await units.getWorkers()) {
      const name = w.rawname?.includes(":w:") ? w.rawname.slice(w.rawname.indexOf(":w:") + 3) : w.name;
      const age = Number(w.age);
      const key = `${name}\0${String(w.addr).replace(/:\d+$/, "")}`;
      const seen = byName.get(key);
      if (!seen || age > seen.age_s) byName.set(key, { name, addr: w.addr, age_s: age });
    }
    const workers = [...byName.values()];
    const running: { pipeline: string; run_id: string | null }[] = [];
    const lockPrefix = `${cfg.prefix}:lock:`;
    for (const key of await redis.keys(`${lockPrefix}*`))
      running.push({ pipeline: key.slice(lockPrefix.length), run_id: await redis.get(key) });
    const jobs = await units.getJobCounts("waiting", "active", "delayed", "failed");
    const scheduled = (await schedules.getJobSchedulers()).map((s) => ({
      pipeline: s.name,
      cron: s.pattern ?? null,
      next: s.next ? new Date(s.next).toISOString() : null,
    }));
    const status = { redis: shownRedis(cfg), workers, running, jobs, scheduled };
    if (opts.json) io.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
    else io.stdout.write(formatStatus(status));
    return EXIT.ok;
  } finally {
    await Promise.allSettled([units.close(), schedules.close()]);
    redis.disconnect();
  }
}

function formatStatus(s: {
  redis: string;
  workers: { name: string; age_s: number }[];
  running: { pipeline: string; run_id: string | null }[];
  jobs: Record<string, number>;
  scheduled: { pipeline: string; cron: string | null; next: string | null }[];
}): string {
  const lines = [`queue on the ${s.redis}`, `workers: ${s.workers.length}`];
  for (const w of s.workers) lines.push(`  ${w.name} (up ${w.age_s}s)`);
  lines.push(`running: ${s.running.length}`);
  for (const r of s.running) lines.push(`  ${r.pipeline}  run ${r.run_id ?? "?"}`);
  lines.push(
    `jobs: ${s.jobs.waiting ?? 0} waiting, ${s.jobs.active ?? 0} running, ${s.jobs.delayed ?? 0} delayed, ${s.jobs.failed ?? 0} failed`,
  );
  lines.push(`scheduled: ${s.scheduled.length}`);
  for (const x of s.scheduled)
    lines.push(`  ${x.pipeline}  \`${x.cron ?? "?"}\` (UTC)  next ${x.next ?? "?"}`);
  return `${lines.join("\n")}\n`;
}
