import { historyFile } from "../compile/layout.js";
import { FileReadError, MAX_BYTES, readText } from "../config/read-bounded.js";
import { writeAtomic } from "../shared/atomic-write.js";

/** One stream of one past run, as the history keeps it. */
export interface HistoryStream {
  name: string;
  status: string;
  /** The output was committed (not rejected, not kept beside as a preview). */
  committed: boolean;
  seen: number;
  written: number;
  invalid: number;
  invalid_ratio: number;
  /** Fields seen that the schema does not declare (drift), by count of names. */
  new_fields: number;
  duration_ms: number;
}

export interface HistoryRun {
  run_id: string;
  started_at: string;
  status: string;
  duration_ms: number;
  streams: HistoryStream[];
}

/**
 * The last runs of a pipeline, oldest first, in `<state>/.history/<pipeline>.history.json`: what the
 * volume check compares with and what the report's history view draws. Advisory: a file that is
 * missing or cannot be used reads as no history (the volume check is then skipped for one run,
 * and the file is written afresh), unlike the state file whose loss would reload everything.
 */
export async function readRunHistory(stateDir: string, pipeline: string): Promise<HistoryRun[]> {
  let text: string;
  try {
    text = await readText(historyFile(stateDir, pipeline), {
      maxBytes: MAX_BYTES.state,
      what: "a run history file",
      noFollow: true,
    });
  } catch (err) {
    if (err instanceof FileReadError) return [];
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as { version?: unknown; runs?: unknown };
    if (parsed?.version !== 1 || !Array.isArray(parsed.runs)) return [];
    return parsed.runs.filter(isRun);
  } catch {
    return [];
  }
}

/** Adds a run and keeps the last `keep`. */
export async function appendRunHistory(
  stateDir: string,
  pipeline: string,
  run: HistoryRun,
  keep: number,
): Promise<HistoryRun[]> {
  const runs = [...(await readRunHistory(stateDir, pipeline)), run].slice(-keep);
  await writeAtomic(
    historyFile(stateDir, pipeline),
    `${JSON.stringify({ version: 1, runs }, null, 1)}\n`,
    0o644,
  );
  return runs;
}

/** Records the stream wrote in the last run that committed it; null when none did. */
export function lastCommittedWritten(runs: HistoryRun[], stream: string): number | null {
  for (let i = runs.length - 1; i >= 0; i--) {
    const s = runs[i].streams.find((x) => x.name === stream);
    if (s?.committed) return s.written;
  }
  return null;
}

const num = (v: unknown): boolean => typeof v === "number" && Number.isFinite(v);

function isRun(v: unknown): v is HistoryRun {
  if (v === null || typeof v !== "object") return false;
  const r = v as Record<string, unknown>;
  return (
    typeof r.run_id === "string" &&
    typeof r.started_at === "string" &&
    typeof r.status === "string" &&
    num(r.duration_ms) &&
    Array.isArray(r.streams) &&
    r.streams.every(
      (s) =>
        s !== null &&
        typeof s === "object" &&
        typeof s.name === "string" &&
        typeof s.status === "string" &&
        typeof s.committed === "boolean" &&
        ["seen", "written", "invalid", "invalid_ratio", "new_fields", "duration_ms"].every((k) =>
          num((s as Record<string, unknown>)[k]),
        ),
    )
  );
}
