import { CronExpressionParser } from "cron-parser";
import { type RuleIssue, ruleIssue } from "./rule.js";

const EXPECTED = "five fields: minute hour day-of-month month day-of-week, e.g. `0 * * * *` (hourly, UTC)";

/** `schedule`: a cron expression (UTC) that parses; `validate` checks it with or without a queue. */
export function checkSchedule(schedule: unknown): RuleIssue[] {
  if (typeof schedule !== "string") return [];
  const problem = scheduleProblem(schedule);
  return problem ? [ruleIssue("bad_value", ["schedule"], problem, { expected: EXPECTED })] : [];
}

function scheduleProblem(schedule: string): string | null {
  const fields = schedule.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6)
    return `the cron expression does not parse (${fields.length} fields)`;
  // cron-parser's `H` (`H`, `H(0-29)`, `H/15`) is a random value at every parse: the next time
  // would move at each run and differ between workers. (`THU` is a day name.)
  if (fields.some((f) => f.split(",").some((t) => /^H(\(|\/|$)/.test(t))))
    return "the cron expression uses `H` (a random value, not supported here): write the minute or hour itself";
  let cron: ReturnType<typeof CronExpressionParser.parse>;
  try {
    cron = CronExpressionParser.parse(schedule, { tz: "UTC" });
  } catch (err) {
    return `the cron expression does not parse (${(err as Error).message})`;
  }
  // One that parses but matches no date (`0 0 31 2,4 *`): BullMQ would drop it without a word.
  try {
    cron.next();
  } catch {
    return "the cron expression never comes: no date matches it";
  }
  return null;
}
