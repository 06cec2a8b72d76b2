import { CronExpressionParser } from "cron-parser";
import { type RuleIssue, ruleIssue } from "./rule.js";

/** `schedule`: a cron expression (UTC) that parses; `validate` checks it with or without a queue. */
export function checkSchedule(schedule: unknown): RuleIssue[] {
  if (typeof schedule !== "string") return [];
  const fields = schedule.trim().split(/\s+/).length;
  let problem: string | null = fields === 5 || fields === 6 ? null : `${fields} fields`;
  if (!problem) {
    try {
      const cron = CronExpressionParser.parse(schedule, { tz: "UTC" });
      // One that parses but matches no date (`0 0 31 2,4 *`): BullMQ drops it without a word.
      try {
        cron.next();
      } catch {
        return [
          ruleIssue("bad_value", ["schedule"], "the cron expression never comes: no date matches it", {
            expected: "a day that exists, e.g. `0 0 28 2 *`",
          }),
        ];
      }
    } catch (err) {
      problem = (err as Error).message;
    }
  }
  return problem
    ? [
        ruleIssue("bad_value", ["schedule"], `the cron expression does not parse (${problem})`, {
          expected: "five fields: minute hour day-of-month month day-of-week, e.g. `0 * * * *` (hourly, UTC)",
        }),
      ]
    : [];
}
