import type { AuthPlan } from "../../compile/plan.js";
import type { HttpRequest } from "../client.js";
import { type AuthProvider, withQueryParam } from "./auth.js";

type StaticPlan = Exclude<AuthPlan, { type: "oauth2" }>;

/** none, bearer, basic and api_key: fixed credentials, nothing to refresh. */
export function staticAuth(plan: StaticPlan): AuthProvider {
  let add: (req: HttpRequest) => HttpRequest;
  switch (plan.type) {
    case "none":
      add = (req) => req;
      break;
    case "bearer": {
      const value = `${plan.scheme} ${plan.token}`;
      add = (req) => ({ ...req, headers: { ...req.headers, authorization: value } });
      break;
    }
    case "basic": {
      const value = `Basic ${Buffer.from(`${plan.username}:${plan.password}`).toString("base64")}`;
      add = (req) => ({ ...req, headers: { ...req.headers, authorization: value } });
      break;
    }
    case "api_key":
      add =
        plan.in === "query"
          ? (req) => ({ ...req, url: withQueryParam(req.url, plan.name, plan.value) })
          : (req) => ({ ...req, headers: { ...req.headers, [plan.name.toLowerCase()]: plan.value } });
      break;
  }
  return {
    start: async () => {},
    apply: async (req) => add(req),
    refresh: async () => false,
    queryNames: plan.type === "api_key" && plan.in === "query" ? [plan.name] : [],
  };
}
