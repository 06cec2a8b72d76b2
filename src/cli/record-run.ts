/**
 * `pipelines run <name> --record [dir]`: the run's HTTP exchanges, the state it started from, its
 * clock and run id go to `<dir>/recording.json` (default `tests/<pipeline>/`), secrets named; a
 * replay of it then writes the first snapshots, so `pipelines test` passes until something changes.
 */
import path from "node:path";
import type { ExecutionPlan } from "../compile/plan.js";
import type { LoadedPipeline } from "../config/load-pipeline.js";
import { readEnv } from "../config/load-pipeline.js";
import type { Project } from "../config/project.js";
import { RecordingClient } from "../http/recorder.js";
import { type Recording, recordableState, splitEnv, writeRecording } from "../run/recording.js";
import type { RunOptions } from "../run/run-pipeline.js";
import type { PipelineResult } from "../run/stream-result.js";
import { plural } from "../shared/format.js";
import { StateStore } from "../state/state-store.js";
import { defaultRecordingDir, testRecording } from "./cmd-test.js";
import { CliError, type CliIO, EXIT } from "./io.js";

export interface RecordSession {
  /** Options for startPipelineRun: the recording client and the run's clock. */
  runOptions: Pick<RunOptions, "httpClient" | "startedAt">;
  /** Writes the recording and its first snapshots; the lines to print, and whether it worked. */
  finish(result: PipelineResult): Promise<{ ok: boolean; lines: string[] }>;
}

/** `--record [dir]`: a folder given goes with one pipeline only; no --preview or --singer. */
export function checkRecordOption(
  record: string | true | undefined,
  opts: { preview?: unknown; singer?: boolean },
  pipelines: number,
): void {
  if (record === undefined) return;
  if (opts.preview !== undefined || opts.singer)
    throw new CliError("--record goes with a normal run (not --preview or --singer)", EXIT.config);
  if (typeof record === "string" && pipelines > 1)
    throw new CliError(
      "--record <dir> records one pipeline; without a folder each goes to tests/<pipeline>/",
      EXIT.config,
    );
}

export async function startRecording(
  io: CliIO,
  project: Project,
  plan: ExecutionPlan,
  loaded: LoadedPipeline,
  setup: { record: string | true; runId: string; streams: string[]; runOpts: RunOptions },
): Promise<RecordSession> {
  const dir =
    typeof setup.record === "string"
      ? path.resolve(io.cwd, setup.record)
      : defaultRecordingDir(project, plan.pipeline);
  const env = readEnv(project, io.env);
  const split = splitEnv(loaded.envUsed, env, loaded.redactor);
  const startState = recordableState(
    await (setup.runOpts.stateStore ?? new StateStore(plan.dirs.state, plan.pipeline)).read(),
  );
  const startedAt = new Date();
  let client: RecordingClient | null = null;
  return {
    runOptions: {
      startedAt,
      httpClient: (o) => {
        client = new RecordingClient(o, split.namer);
        return client;
      },
    },
    async finish(result) {
      const shown = path.relative(io.cwd, dir) || ".";
      if (result.status !== "ok" || !client)
        return { ok: false, lines: [`not recorded: the run did not succeed (${shown}/ is unchanged)`] };
      const o = setup.runOpts;
      const recording: Recording = {
        version: 1,
        pipeline: plan.pipeline,
        run_id: setup.runId,
        started_at: startedAt.toISOString(),
        options: {
          streams: setup.streams,
          limit: o.limit ?? null,
          max_pages: o.maxPages ?? null,
          full_refresh: o.fullRefresh ?? false,
        },
        env: split.plain,
        secret_env: split.secret,
        state: startState,
        exchanges: (client as RecordingClient).recorded(),
      };
      // A last net: any secret the run learnt and nothing named is masked.
      const file = await writeRecording(dir, recording, (t) => loaded.redactor.text(t));
      const first = await testRecording(io, project, dir, true);
      return {
        ok: first.ok,
        lines: [
          `recorded ${plural(recording.exchanges.length, "exchange")} in ${path.relative(io.cwd, file)}; \`pipelines test ${typeof setup.record === "string" ? shown : plan.pipeline}\` replays them`,
          ...first.lines,
        ],
      };
    },
  };
}
