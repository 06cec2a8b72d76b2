import { DEFAULTS } from "../defaults.gen.js";
import type { Auth } from "../pipeline-types.gen.js";
import { HEADER_NAME, type RuleIssue, ruleIssue } from "./rule.js";

/** `source.auth`: an API key sent as a header has a header name. */
export function checkAuth(auth: Auth | undefined): RuleIssue[] {
  if (
    auth?.type === "api_key" &&
    (auth.in ?? DEFAULTS.authApiKey.in) === "header" &&
    typeof auth.name === "string" &&
    auth.name !== "" &&
    !HEADER_NAME.test(auth.name)
  )
    return [
      ruleIssue(
        "bad_value",
        ["source", "auth", "name"],
        `the key is sent as a header (\`in: header\`): expected an HTTP header name, found \`${auth.name}\``,
      ),
    ];
  return [];
}
