import type { ExecutionPlan } from "../../compile/plan.js";
import type { Redactor } from "../../config/secrets.js";
import type { StateStore } from "../../run/state.js";
import type { HttpClient } from "../client.js";
import type { AuthProvider } from "./auth.js";
import { OAuth2Auth } from "./oauth2.js";
import { staticAuth } from "./static-auth.js";

export interface AuthDeps {
  client: HttpClient;
  redactor: Redactor;
  state: StateStore | null;
}

/** The auth registry: oauth2 has a token lifecycle, the other types are fixed credentials. */
export function createAuth(plan: ExecutionPlan, deps: AuthDeps): AuthProvider {
  if (plan.auth.type === "oauth2") {
    return new OAuth2Auth(plan.auth, {
      client: deps.client,
      redactor: deps.redactor,
      retry: plan.source.retry,
      state: deps.state,
    });
  }
  return staticAuth(plan.auth);
}
