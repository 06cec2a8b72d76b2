import type { PipelineFile, Stream } from "../pipeline-types.gen.js";
import { isMap } from "../plain-values.js";
import { checkAuth } from "./auth.js";
import { checkOutput } from "./output.js";
import { checkPaginate } from "./paginate.js";
import { checkParents } from "./parents.js";
import type { RuleIssue } from "./rule.js";
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
    return [...checkStream(name, s, cfg.output), ...checkPaginate(s, ["streams", name, "paginate"])];
  });
  return [
    ...checkSource(source),
    ...checkAuth(source?.auth),
    ...checkOutput(cfg.output, streams),
    ...perStream,
    ...checkParents(streams),
  ];
}
