import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import { compilePlan } from "../compile/compile-plan.js";
import { loadPipeline, readEnv } from "../config/load-pipeline.js";
import type { Project } from "../config/project.js";
import {
  RECORDING_FILE,
  type Recording,
  readRecording,
  replayEnv,
  replayRecording,
  splitEnv,
} from "../run/recording.js";
import { diffStream, readSnapshots, writeSnapshots } from "../run/snapshots.js";
import { plural } from "../shared/format.js";
import { projectFor } from "./context.js";
import { CliError, type CliIO, EXIT } from "./io.js";

/** Where recordings live: `tests/<pipeline>/` under the project root. */
export function defaultRecordingDir(project: Project, pipeline: string): string {
  return path.join(project.root, "tests", pipeline);
}

/**
 * `pipelines test [name…]`: each recording replayed with no network (names: pipelines, whose
 * recording is `tests/<name>/`, or recording folders); none: every recording under `tests/`.
 */
export async function testCommand(io: CliIO, names: string[], opts: { update?: boolean }): Promise<number> {
  const project = await projectFor(io);
  const dirs = names.length ? names.map((n) => recordingDirOf(io, project, n)) : allRecordings(project);
  if (dirs.length === 0)
    throw new CliError(
      `no recordings in ${path.relative(io.cwd, path.join(project.root, "tests")) || "tests"}/: record one with \`pipelines run <name> --record\``,
      EXIT.config,
    );
  let failed = 0;
  for (const dir of dirs) {
    const outcome = await testRecording(io, project, dir, opts.update ?? false);
    io.stderr.write(`${outcome.lines.join("\n")}\n`);
    if (!outcome.ok) failed++;
  }
  if (dirs.length > 1)
    io.stderr.write(
      failed
        ? `${failed} of ${plural(dirs.length, "test")} failed\n`
        : `${plural(dirs.length, "test")} passed\n`,
    );
  return failed ? EXIT.runFailed : EXIT.ok;
}

function recordingDirOf(io: CliIO, project: Project, name: string): string {
  const asDir = path.resolve(io.cwd, name);
  if (/[/\\]/.test(name) || existsSync(path.join(asDir, RECORDING_FILE))) return asDir;
  return defaultRecordingDir(project, name);
}

function allRecordings(project: Project): string[] {
  const root = path.join(project.root, "tests");
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(path.join(root, e.name, RECORDING_FILE)))
    .map((e) => path.join(root, e.name))
    .sort();
}

/**
 * Replays one recording and compares the outputs with its snapshots (`update`: rewrites them).
 * Config errors of the pipeline are thrown (exit 2), as for any command.
 */
export async function testRecording(
  io: CliIO,
  project: Project,
  dir: string,
  update: boolean,
): Promise<{ ok: boolean; lines: string[] }> {
  const shown = path.relative(io.cwd, dir) || ".";
  let recording: Recording | null;
  try {
    recording = await readRecording(dir);
  } catch (err) {
    return { ok: false, lines: [`test ${shown}: FAILED: ${(err as Error).message}`] };
  }
  if (!recording)
    throw new CliError(
      `no recording in ${shown}/ (${RECORDING_FILE}): record one with \`pipelines run ${path.basename(dir)} --record\``,
      EXIT.config,
    );
  const env = replayEnv(recording, readEnv(project, io.env));
  const loaded = loadPipeline(project, recording.pipeline, env);
  const plan = compilePlan(loaded);
  const { namer } = splitEnv(loaded.envUsed, env, loaded.redactor);
  const replay = await replayRecording(plan, loaded.redactor, recording, namer, env);
  const head = `test ${recording.pipeline} (${shown})`;
  const failures = replay.result.streams
    .filter((s) => s.status !== "ok")
    .map((s) => `  ${s.name}: ${s.status}${s.error ? `: ${s.error.message}` : ""}`);
  if (failures.length) return { ok: false, lines: [`${head}: FAILED`, ...failures] };
  const note = replay.unused ? ` (${plural(replay.unused, "recorded exchange")} not asked for)` : "";
  const records = [...replay.outputs.values()].reduce((n, t) => n + t.split("\n").filter(Boolean).length, 0);
  if (update) {
    await writeSnapshots(dir, replay.outputs);
    return { ok: true, lines: [`${head}: snapshots written (${plural(records, "record")})${note}`] };
  }
  const diffs = compareSnapshots(await readSnapshots(dir), replay.outputs, plan.streams);
  if (diffs.length)
    return {
      ok: false,
      lines: [
        `${head}: FAILED: the outputs differ from the snapshots`,
        ...diffs,
        `  (if the change is intended: \`pipelines test ${recording.pipeline} --update\`)`,
      ],
    };
  return {
    ok: true,
    lines: [`${head}: ok, ${plural(records, "record")} as in the snapshots${note}`],
  };
}

function compareSnapshots(
  snapshots: Map<string, string>,
  outputs: Map<string, string>,
  streams: { name: string; primaryKey: string[] | null }[],
): string[] {
  const lines: string[] = [];
  for (const [stream, output] of outputs) {
    const snapshot = snapshots.get(stream);
    if (snapshot === undefined) {
      lines.push(`  ${stream}: no snapshot (write it with --update)`);
      continue;
    }
    const pk = streams.find((s) => s.name === stream)?.primaryKey ?? null;
    const diff = diffStream(snapshot, output, pk);
    if (diff.length) lines.push(`  ${stream}: ${diff[0]}`, ...diff.slice(1).map((l) => `    ${l}`));
  }
  for (const stream of snapshots.keys())
    if (!outputs.has(stream)) lines.push(`  ${stream}: has a snapshot but wrote nothing in this run`);
  return lines;
}
