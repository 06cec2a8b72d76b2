import type { ExecutionPlan } from "../../compile/plan.js";
import type { Redactor } from "../../config/secrets.js";
import type { HttpClient } from "../client.js";
import type { AuthProvider } from "./auth.js";
import { staticAuth } from "./static-auth.js";

export interface AuthDeps {
  client: HttpClient;
  redactor: Redactor;
  signal?: AbortSignal;
}

export function createAuth(plan: ExecutionPlan, _deps: AuthDeps): AuthProvider {
  if (plan.auth.type === "oauth2") throw new Error("oauth2 is not available yet");
  return staticAuth(plan.auth);
}
