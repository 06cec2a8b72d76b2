import type { PipelineFile, Stream } from "../pipeline-types.gen.js";
import { isMap } from "../plain-values.js";
import { checkAuth } from "./auth.js";
import { checkListsAndWindows } from "./lists-windows.js";
import { checkOutput } from "./output.js";
import { checkPaginate } from "./paginate.js";
import { checkParents } from "./parents.js";
import { checkRecordKeys, checkResponseRules } from "./responses.js";
import type { RuleIssue } from "./rule.js";
import { checkSchedule } from "./schedule.js";
import { checkSource } from "./source.js";
import { checkStream } from "./stream.js";

/** The file's streams, or none when `streams` is no map or list (the format check says so). */
export function streamsOf(cfg: PipelineFile): Record<string, Stream> {
  return cfg.streams && typeof cfg.streams === "object" ? cfg.streams : {};
}

/** Every component's rules (the record schema files are read apart: rules/schema-files.ts). */
export function checkComponents(cfg: PipelineFile): RuleIssue[] {
  const source = isMap(cfg.source) ? cfg.source : undefined;
  const streams = streamsOf(cfg);
  const names = Object.keys(streams);
  const perStream = names.flatMap((name) => {
    const s = streams[name];
    if (!s || typeof s !== "object") return [];
    return [
      ...checkStream(name, s, cfg.output),
      ...checkPaginate(s, ["streams", name, "paginate"]),
      ...checkListsAndWindows(name, s),
      ...checkRecordKeys(name, s, source),
    ];
  });
  return [
    ...checkSource(source),
    ...checkAuth(source?.auth),
    ...checkResponseRules(
      source?.on_response,
      ["source", "on_response"],
      isMap(source?.auth) ? source.auth.type : undefined,
    ),
    ...checkOutput(cfg.output, streams),
    ...perStream,
    ...checkParents(streams),
    ...checkSchedule(cfg.schedule),
  ];
}
