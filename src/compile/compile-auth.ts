import type { Auth } from "../config/pipeline-types.gen.js";
import { parseDuration } from "../config/units.js";
import type { AuthPlan } from "./plan.js";

type Compilers = { [K in Auth["type"]]: (auth: Extract<Auth, { type: K }>) => AuthPlan };

/** One compile function per auth type; the registry is the map. */
export const authCompilers: Compilers = {
  none: () => ({ type: "none" }),
  bearer: (a) => ({ type: "bearer", token: a.token, scheme: a.scheme ?? "Bearer" }),
  basic: (a) => ({ type: "basic", username: a.username, password: a.password ?? "" }),
  api_key: (a) => ({ type: "api_key", name: a.name, value: a.value, in: a.in ?? "header" }),
  oauth2: (a) => ({
    type: "oauth2",
    tokenUrl: a.token_url,
    grantType: a.grant_type,
    clientId: a.client_id ?? null,
    clientSecret: a.client_secret ?? null,
    refreshToken: a.refresh_token ?? null,
    scope: a.scope ?? null,
    clientAuth: a.client_auth ?? "body",
    refreshBeforeMs: parseDuration(a.refresh_before ?? "60s"),
  }),
};

export function compileAuth(auth: Auth | undefined): AuthPlan {
  const a = auth ?? { type: "none" as const };
  return (authCompilers[a.type] as (x: Auth) => AuthPlan)(a);
}
