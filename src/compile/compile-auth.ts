import { DEFAULTS } from "../config/defaults.gen.js";
import type { Auth } from "../config/pipeline-types.gen.js";
import { parseDuration } from "../shared/units.js";
import type { AuthPlan } from "./plan.js";

type Compilers = { [K in Auth["type"]]: (auth: Extract<Auth, { type: K }>) => AuthPlan };

/** One compile function per auth type; the registry is the map. */
export const authCompilers: Compilers = {
  none: () => ({ type: "none" }),
  bearer: (a) => ({ type: "bearer", token: a.token, scheme: a.scheme ?? DEFAULTS.authBearer.scheme }),
  basic: (a) => ({
    type: "basic",
    username: a.username,
    password: a.password ?? DEFAULTS.authBasic.password,
  }),
  api_key: (a) => ({ type: "api_key", name: a.name, value: a.value, in: a.in ?? DEFAULTS.authApiKey.in }),
  oauth2: (a) => ({
    type: "oauth2",
    tokenUrl: a.token_url,
    grantType: a.grant_type,
    clientId: a.client_id ?? null,
    clientSecret: a.client_secret ?? null,
    refreshToken: a.refresh_token ?? null,
    scope: a.scope ?? null,
    clientAuth: a.client_auth ?? DEFAULTS.authOAuth2.client_auth,
    refreshBeforeMs: parseDuration(a.refresh_before ?? DEFAULTS.authOAuth2.refresh_before),
  }),
};

export function compileAuth(auth: Auth | undefined): AuthPlan {
  const a = auth ?? { type: "none" as const };
  return (authCompilers[a.type] as (x: Auth) => AuthPlan)(a);
}
