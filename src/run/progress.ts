import { formatNumber } from "../shared/format.js";
import type { Output } from "../shared/output.js";
import { rawOutput, terminalText } from "../shared/terminal.js";
import type { StreamResult } from "./stream-result.js";

export const fmtInt = (n: number) => formatNumber(Math.round(n));

/** `12 pages · 2,400 records · 1,180 rec/s` */
export function progressLine(r: StreamResult): string {
  const elapsed = r.startedAt ? (Date.now() - r.startedAt) / 1000 : 0;
  const rate = elapsed > 0.2 ? r.records.written / elapsed : 0;
  const retries = Object.values(r.requests.retries).reduce((a, b) => a + b, 0);
  const parts = [
    `${fmtInt(r.pages)} page${r.pages === 1 ? "" : "s"}`,
    `${fmtInt(r.records.written)} record${r.records.written === 1 ? "" : "s"}`,
  ];
  const u = r.units;
  if (u?.kind === "windows") parts.push(`windows ${fmtInt(u.done)}/${fmtInt(u.total)}`);
  else if (u && !r.partitions) parts.push(`partitions ${fmtInt(u.done)}/${fmtInt(u.total)}`);
  if (r.partitions)
    parts.push(
      `partitions ${fmtInt(r.partitions.done)}/${fmtInt(r.partitions.total)}${r.partitions.failed.length ? ` (${r.partitions.failed.length} failed)` : ""}`,
    );
  if (r.status === "running") parts.push(`${fmtInt(rate)} rec/s`);
  if (retries) parts.push(`${retries} retr${retries === 1 ? "y" : "ies"}`);
  if (r.requests.rateLimitWaits.count)
    parts.push(`waited ${(r.requests.rateLimitWaits.ms / 1000).toFixed(1)}s for rate limits`);
  return parts.join(" · ");
}

export interface ProgressView {
  stop(): Promise<void>;
}

/**
 * The live view of a run: a listr2 task list (pipeline → streams) on a terminal, plain lines
 * otherwise. It only reads the live results; the run does not depend on it.
 */
export async function showProgress(
  pipeline: string,
  results: StreamResult[],
  done: Promise<unknown>,
  io: { stderr: Output; stdout: Output; env: Record<string, string | undefined> },
): Promise<ProgressView> {
  const interactive = Boolean(io.stderr.isTTY && io.stdout.isTTY) && !io.env.CI && io.env.TERM !== "dumb";
  if (!interactive) return plainProgress(pipeline, results, io.stderr);
  const { DefaultRenderer, Listr, ListrLogger, ProcessOutput } = await import("listr2");
  // listr2 would check process.stdout itself and fall back to a plain renderer writing to the
  // real stdout; the decision above (on io's streams) is the one that holds.
  class TerminalRenderer extends DefaultRenderer {
    static override nonTTY = true;
  }
  // listr2 draws with escapes of its own: it gets the raw stream, and every text handed to it
  // goes through terminalText (names and messages can come from the API).
  const stderr = rawOutput(io.stderr) as unknown as NodeJS.WriteStream;
  const t = terminalText;
  const tasks = new Listr(
    [
      {
        title: t(pipeline),
        task: (_ctx, parent) =>
          parent.newListr(
            results.map((r) => ({
              title: t(r.name),
              task: async (_c, task) => {
                const tick = setInterval(() => {
                  task.title = t(
                    `${r.name}  ${r.status === "waiting" ? "waiting for parent" : progressLine(r)}`,
                  );
                }, 120);
                try {
                  await waitFor(r, done);
                } finally {
                  clearInterval(tick);
                }
                task.title = t(`${r.name}  ${progressLine(r)}${r.stop ? ` · ${r.stop.message}` : ""}`);
                if (r.status === "failed") throw new Error(t(r.error?.message ?? "failed"));
                if (r.status === "skipped") task.skip(t(`${r.name}: ${r.error?.message ?? "skipped"}`));
              },
            })),
            { concurrent: true, exitOnError: false },
          ),
      },
    ],
    {
      concurrent: false,
      exitOnError: false,
      registerSignalListeners: false,
      renderer: TerminalRenderer,
      rendererOptions: {
        logger: new ListrLogger({ processOutput: new ProcessOutput(stderr, stderr) }),
        collapseSubtasks: false,
        collapseErrors: false,
        showErrorMessage: true,
      },
    },
  );
  const running = tasks.run().catch(() => {});
  return { stop: () => running };
}

async function waitFor(r: StreamResult, done: Promise<unknown>): Promise<void> {
  while (r.status === "waiting" || r.status === "running") {
    await Promise.race([done, new Promise((res) => setTimeout(res, 100))]);
    if (r.status !== "waiting" && r.status !== "running") return;
  }
}

/** CI and pipes: a line when a stream starts, every few seconds while it runs, and when it ends. */
function plainProgress(pipeline: string, results: StreamResult[], out: Output): ProgressView {
  const last = new Map<string, string>();
  let lastBeat = Date.now();
  const print = (force: boolean) => {
    const beat = Date.now() - lastBeat >= 5000;
    for (const r of results) {
      const prev = last.get(r.name);
      let line: string | null = null;
      if (r.status === "running" && prev === undefined) line = `started`;
      else if (r.status === "running" && (beat || force)) line = progressLine(r);
      else if ((r.status === "ok" || r.status === "failed" || r.status === "skipped") && prev !== "end") {
        line =
          r.status === "ok"
            ? `done: ${progressLine(r)} · ${r.stop?.message ?? ""}`
            : r.status === "skipped"
              ? `skipped: ${r.error?.message}`
              : `FAILED: ${r.error?.message}`;
        last.set(r.name, "end");
        out.write(`[${pipeline}/${r.name}] ${line}\n`);
        continue;
      }
      if (line) {
        last.set(r.name, line);
        out.write(`[${pipeline}/${r.name}] ${line}\n`);
      }
    }
    if (beat) lastBeat = Date.now();
  };
  const tick = setInterval(() => print(false), 250);
  return {
    stop: async () => {
      clearInterval(tick);
      print(false);
    },
  };
}
