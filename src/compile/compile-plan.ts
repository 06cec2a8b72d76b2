import { DEFAULTS } from "../config/defaults.gen.js";
import type { LoadedPipeline } from "../config/load-pipeline.js";
import type { Stream } from "../config/pipeline-types.gen.js";
import { escapeTemplate } from "../config/templates.js";
import { parseDuration } from "../shared/units.js";
import { joinUrl } from "../shared/url.js";
import { compileAuth } from "./compile-auth.js";
import { compileOutput, compileValidation } from "./compile-output.js";
import { compilePaginator } from "./compile-paginator.js";
import { compileExclude, compileFields, compileResponse, compileRules } from "./compile-records.js";
import { compileParams, compileSource, mergeHeaders } from "./compile-source.js";
import { compileListsAndWindows } from "./compile-windows.js";
import type { ExecutionPlan, ParamsPlan, SourcePlan, StreamPlan } from "./plan.js";

/** Config → ExecutionPlan. Pure: no network, no file writes. */
export function compilePlan(loaded: LoadedPipeline): ExecutionPlan {
  const cfg = loaded.config;
  const project = loaded.project;
  const source = compileSource(cfg.source);
  const streams = orderStreams(cfg.streams).map(([name, s]) =>
    compileStream(name, s, source, loaded, {
      pipeline: loaded.name,
      root: project.root,
      outDir: project.outDir,
    }),
  );
  return {
    version: 1,
    pipeline: loaded.name,
    file: loaded.file,
    description: cfg.description ?? null,
    source,
    auth: compileAuth(cfg.source.auth),
    streams,
    validation: compileValidation(cfg.validation),
    keepReports: cfg.reports?.keep ?? DEFAULTS.reports.keep,
    dirs: {
      root: project.root,
      out: project.outDir,
      reports: project.reportsDir,
      state: project.stateDir,
      schemas: project.schemasDir,
    },
  };
}

function compileStream(
  name: string,
  s: Stream,
  source: SourcePlan,
  loaded: LoadedPipeline,
  ctx: { pipeline: string; root: string; outDir: string },
): StreamPlan {
  // Parent and window values are filled per partition / window: the request keeps its templates.
  const templated = s.parent !== undefined || s.windows !== undefined;
  const path = s.path ?? "";
  const flatten =
    s.flatten === true
      ? { separator: DEFAULTS.stream_flatten.separator }
      : s.flatten
        ? { separator: s.flatten.separator ?? DEFAULTS.stream_flatten.separator }
        : null;
  const inc = s.incremental;
  return {
    name,
    parent: s.parent ?? null,
    request: {
      method: s.method ?? DEFAULTS.stream.method,
      // A child stream's path is joined too (its `${parent.…}` templates are filled per parent
      // record); only a path that starts with a template can turn out absolute, so it waits.
      url: templated && path.startsWith("${") ? path : joinUrl(source.baseUrl, path),
      // In a child stream's request, the source's values are literals: escape their `${`.
      params: { ...(templated ? escapeParams(source.params) : source.params), ...compileParams(s.params) },
      headers: mergeHeaders(templated ? escapeValues(source.headers) : source.headers, s.headers),
      body: s.body ?? null,
      templated,
    },
    paginator: compilePaginator(s.paginate),
    records: s.records ?? DEFAULTS.stream.records,
    errorPath: s.error_path ?? null,
    onResponse: compileRules(name, s, loaded.config.source),
    response: compileResponse(s.response),
    fields: compileFields(s.fields),
    exclude: compileExclude(s.exclude),
    filter: s.filter ?? null,
    flatten,
    includeParent: s.include_parent
      ? Object.entries(s.include_parent).map(([field, from]) => ({
          field,
          from: from.replace(/^\$\.?/, "").split("."),
        }))
      : null,
    schema: loaded.recordSchemas.get(name) ?? null,
    primaryKey:
      s.primary_key === undefined ? null : Array.isArray(s.primary_key) ? s.primary_key : [s.primary_key],
    incremental: inc
      ? {
          cursorField: inc.cursor_field,
          param: inc.param,
          in: inc.in ?? DEFAULTS.incremental.in,
          initial: inc.initial ?? null,
          lookbackMs: inc.lookback === undefined ? 0 : parseDuration(inc.lookback),
        }
      : null,
    onPartitionError: s.on_partition_error ?? DEFAULTS.stream.on_partition_error,
    output: compileOutput(loaded.config.output, { ...ctx, stream: name }),
    ...compileListsAndWindows(s),
  };
}

function escapeValues(map: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [k, escapeTemplate(v)]));
}

function escapeParams(params: ParamsPlan): ParamsPlan {
  return Object.fromEntries(
    Object.entries(params).map(([k, v]) => [k, Array.isArray(v) ? v.map(escapeTemplate) : escapeTemplate(v)]),
  );
}

/** Streams with parents after their parents, otherwise in file order. */
function orderStreams(streams: Record<string, Stream>): [string, Stream][] {
  const out: [string, Stream][] = [];
  const done = new Set<string>();
  const visit = (name: string) => {
    if (done.has(name)) return;
    const parent = streams[name].parent;
    if (parent && streams[parent]) visit(parent);
    done.add(name);
    out.push([name, streams[name]]);
  };
  for (const name of Object.keys(streams)) visit(name);
  return out;
}
