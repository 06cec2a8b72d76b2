import type { PageRequest } from "./paginator.js";

/**
 * Where a pagination value goes, separate from how it is computed (Airbyte's request option):
 * a query parameter, a top-level JSON body field, or a header.
 */
export type Placement = "query" | "body" | "header";

export function inject(
  req: PageRequest,
  where: Placement,
  name: string,
  value: string | number,
): PageRequest {
  switch (where) {
    case "query":
      return { ...req, params: { ...req.params, [name]: String(value) } };
    case "header":
      return { ...req, headers: { ...req.headers, [name]: String(value) } };
    case "body": {
      const body = req.body && typeof req.body === "object" && !Array.isArray(req.body) ? req.body : {};
      return { ...req, body: { ...(body as object), [name]: value } };
    }
  }
}
