import { DEFAULTS } from "../defaults.gen.js";
import type { Paginate, PaginateCursor, PaginatePage, Stream } from "../pipeline-types.gen.js";
import type { KeyPath } from "../yaml-source.js";
import { HEADER_NAME, jsonPathIssues, keyValue, type RuleIssue, ruleIssue } from "./rule.js";

/** Keys that hold a JSONPath, in any paginator (a key its type lacks is the format's concern). */
const PAGINATE_PATHS = ["cursor", "has_more", "done", "next", "total", "total_pages"];

/**
 * `streams.<name>.paginate`: JSONPaths parse; a cursor comes from one place and goes where the
 * request can carry it; a page size comes with its parameter.
 */
export function checkPaginate(stream: Stream, at: KeyPath): RuleIssue[] {
  const pg: Paginate | undefined = stream.paginate;
  if (!pg || typeof pg !== "object") return [];
  const issues = PAGINATE_PATHS.flatMap((k) => jsonPathIssues([...at, k], keyValue(pg, k)));
  if (pg.type === "cursor") issues.push(...checkCursor(pg, stream, at));
  if (pg.type === "page") issues.push(...checkPage(pg, at));
  return issues;
}

function checkCursor(pg: PaginateCursor, stream: Stream, at: KeyPath): RuleIssue[] {
  const issues: RuleIssue[] = [];
  if (pg.in === "header" && typeof pg.param === "string" && !HEADER_NAME.test(pg.param))
    issues.push(
      ruleIssue(
        "bad_value",
        [...at, "param"],
        `\`in: header\` sends the cursor as a header: expected an HTTP header name, found \`${pg.param}\``,
      ),
    );
  if (pg.cursor === undefined && pg.cursor_header === undefined)
    issues.push(
      ruleIssue(
        "missing_key",
        at,
        "a cursor paginator needs `cursor` (a JSONPath in the body) or `cursor_header`",
        {
          key: true,
        },
      ),
    );
  if (pg.cursor !== undefined && pg.cursor_header !== undefined)
    issues.push(
      ruleIssue("conflict", [...at, "cursor_header"], "give `cursor` or `cursor_header`, not both", {
        key: true,
      }),
    );
  if (pg.in === "body" && (stream.method ?? DEFAULTS.stream.method) !== "POST")
    issues.push(
      ruleIssue(
        "conflict",
        [...at, "in"],
        "`in: body` sends the cursor in a JSON body: it needs `method: POST`",
      ),
    );
  return issues;
}

function checkPage(pg: PaginatePage, at: KeyPath): RuleIssue[] {
  if ((pg.size_param === undefined) === (pg.size === undefined)) return [];
  return [
    ruleIssue(
      "missing_key",
      [...at, pg.size_param === undefined ? "size" : "size_param"],
      "`size_param` and `size` go together: give both or neither",
      { key: true },
    ),
  ];
}
