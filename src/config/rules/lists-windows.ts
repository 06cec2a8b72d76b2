import { parseDuration } from "../../shared/units.js";
import {
  FORMAT_UNIT_MS,
  parseEnd,
  parseInstant,
  parseStart,
  type WindowFormat,
} from "../../shared/window-bounds.js";
import { DEFAULTS } from "../defaults.gen.js";
import type { Stream } from "../pipeline-types.gen.js";
import type { KeyPath } from "../yaml-source.js";
import { keyValue, type RuleIssue, ruleIssue } from "./rule.js";

/** The keys a `values` stream may have (format 1.1, "Rules across the 1.1 additions"). */
const BESIDE_VALUES = new Set([
  "values",
  "fields",
  "schema",
  "primary_key",
  "write",
  "exclude",
  "filter",
  "flatten",
]);

/**
 * `streams.<name>.values`, `.windows`, and dotted body paths: a stream requests a `path` or lists
 * `values` (nothing else beside them); windows have a positive `step` no shorter than the
 * format's unit, a `start` before `end`, and no `incremental` beside them; body paths go with POST.
 */
export function checkListsAndWindows(name: string, s: Stream): RuleIssue[] {
  const at = (...rest: (string | number)[]): KeyPath => ["streams", name, ...rest];
  const issues: RuleIssue[] = [];
  if (s.values !== undefined) {
    for (const key of Object.keys(s))
      if (!BESIDE_VALUES.has(key))
        issues.push(
          ruleIssue(
            "conflict",
            at(key),
            `\`${key}\` cannot stand beside \`values\`: a \`values\` stream sends no request (beside it: ${[...BESIDE_VALUES].filter((k) => k !== "values").join(", ")})`,
            { key: true },
          ),
        );
  } else if (s.path === undefined) {
    issues.push(
      ruleIssue(
        "missing_key",
        at(),
        "a stream needs `path` (what to request) or `values` (its records, listed)",
        {
          key: true,
          expected: "`path` or `values`",
        },
      ),
    );
  }
  if (s.windows && typeof s.windows === "object") issues.push(...checkWindows(s, at));
  issues.push(...checkBodyPaths(s, at));
  return issues;
}

function checkWindows(s: Stream, at: (...rest: (string | number)[]) => KeyPath): RuleIssue[] {
  const w = s.windows!;
  const issues: RuleIssue[] = [];
  if (s.incremental !== undefined)
    issues.push(
      ruleIssue(
        "conflict",
        at("incremental"),
        "`windows` and `incremental` cannot go together: a windowed stream remembers where its last committed window ended (drop `incremental`)",
        { key: true },
      ),
    );
  const format = (typeof w.format === "string" ? w.format : DEFAULTS.windows.format) as WindowFormat;
  const unit = FORMAT_UNIT_MS[format] ?? 1000;
  const step = durationOf(w.step);
  if (step !== null && step <= 0)
    issues.push(
      ruleIssue("bad_value", at("windows", "step"), "`step` must be longer than zero", {
        expected: "a duration like `1d` or `6h`",
        found: String(w.step),
      }),
    );
  else if (step !== null && step < unit)
    issues.push(
      ruleIssue(
        "bad_value",
        at("windows", "step"),
        `\`step\` ${String(w.step)} is shorter than one unit of \`format: ${format}\` (${unit >= 86_400_000 ? "1 day" : unit >= 1000 ? "1 s" : "1 ms"}): windows could not be written apart`,
        { expected: `a step of at least ${unit >= 86_400_000 ? "1d" : unit >= 1000 ? "1s" : "1ms"}` },
      ),
    );
  const now = Date.now();
  const start = typeof w.start === "string" ? parseStart(w.start, now) : null;
  if (typeof w.start === "string" && start === null)
    issues.push(
      ruleIssue("bad_value", at("windows", "start"), "`start` is not a date, a date-time or a duration", {
        expected: "`2024-01-01`, `2024-01-01T00:00:00Z`, or a duration before now like `90d`",
        found: w.start,
      }),
    );
  const end = typeof w.end === "string" ? parseEnd(w.end, now) : now;
  if (typeof w.end === "string" && end === null)
    issues.push(
      ruleIssue("bad_value", at("windows", "end"), "`end` is not `now`, a date or a date-time", {
        expected: "`now`, `2024-06-01` or `2024-06-01T00:00:00Z`",
        found: w.end,
      }),
    );
  // Only two fixed bounds can be compared without a clock (`90d` and `now` move together).
  const fixed = typeof w.start === "string" && parseInstant(w.start) !== null && typeof w.end === "string";
  if (fixed && start !== null && end !== null && w.end !== "now" && start > end)
    issues.push(
      ruleIssue("bad_value", at("windows", "start"), `\`start\` ${w.start} is after \`end\` ${w.end}`, {
        expected: "a start before the end",
      }),
    );
  return issues;
}

function durationOf(v: unknown): number | null {
  if (typeof v !== "string" && typeof v !== "number") return null;
  try {
    return parseDuration(v);
  } catch {
    return null; // the format check names it
  }
}

/** A dotted body path (or any `in: body`) needs a POST stream: a GET request has no body. */
function checkBodyPaths(s: Stream, at: (...rest: (string | number)[]) => KeyPath): RuleIssue[] {
  const pg = s.paginate;
  if (!pg || typeof pg !== "object" || (pg.type !== "offset" && pg.type !== "page")) return [];
  if (keyValue(pg, "in") !== "body" || (s.method ?? DEFAULTS.stream.method) === "POST") return [];
  return [
    ruleIssue(
      "conflict",
      at("paginate", "in"),
      "`in: body` sends the page values in a JSON body: it needs `method: POST`",
    ),
  ];
}
