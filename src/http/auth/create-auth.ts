import type { ExecutionPlan } from "../../compile/plan.js";
import type { Redactor } from "../../shared/secrets.js";
import type { StateStore } from "../../state/state-store.js";
import type { HttpClient } from "../client.js";
import type { RequestBudget } from "../rate-budget.js";
import type { RetryPolicy } from "../retry-policy.js";
import type { AuthProvider } from "./auth.js";
import { OAuth2Auth } from "./oauth2.js";
import { staticAuth } from "./static-auth.js";
import type { TokenShare } from "./token-share.js";

export interface AuthDeps {
  client: HttpClient;
  redactor: Redactor;
  state: StateStore | null;
  policy: RetryPolicy;
  budget: RequestBudget | null;
  /** Where the processes of a project with a queue share their OAuth2 token (redis-tokens.ts). */
  tokens?: TokenShare | null;
}

/** The auth registry: oauth2 has a token lifecycle, the other types are fixed credentials. */
export function createAuth(plan: ExecutionPlan, deps: AuthDeps): AuthProvider {
  if (plan.auth.type === "oauth2") {
    return new OAuth2Auth(plan.auth, {
      client: deps.client,
      redactor: deps.redactor,
      policy: deps.policy,
      budget: deps.budget ? { origin: plan.source.origin, budget: deps.budget } : null,
      state: deps.state,
      share: deps.tokens ?? null,
    });
  }
  return staticAuth(plan.auth);
}
