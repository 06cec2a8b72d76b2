import { RunError } from "../../shared/errors.js";
import type { PageRequest } from "./paginator.js";

/** What undici accepts in a header value (RFC 9110 field-value): no CR, LF, NUL or other controls. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

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
    case "header": {
      // A value from the API (a cursor) with a line break would be refused by the HTTP client,
      // and that refusal looks like a connection reset: say what it is, once, without retrying.
      const text = String(value);
      if (!HEADER_VALUE.test(text)) {
        const shown = JSON.stringify(text.length > 60 ? `${text.slice(0, 59)}…` : text);
        throw new RunError(
          "invalid_request",
          `cannot send ${shown} in header ${name}: a header value cannot hold line breaks or other control characters`,
        );
      }
      return { ...req, headers: { ...req.headers, [name]: text } };
    }
    case "body": {
      const body = req.body && typeof req.body === "object" && !Array.isArray(req.body) ? req.body : {};
      return { ...req, body: { ...(body as object), [name]: value } };
    }
  }
}
