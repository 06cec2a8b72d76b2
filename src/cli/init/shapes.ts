/** The pagination shapes `init --from-url` recognises in one response, and the stream's name. */

/** JSONPaths to a cursor, with the name the API reads it back under. */
export const CURSOR_SHAPES: readonly { path: string; param: string }[] = [
  { path: "$.next_cursor", param: "cursor" },
  { path: "$.nextCursor", param: "cursor" },
  { path: "$.cursor", param: "cursor" },
  { path: "$.after_cursor", param: "cursor" },
  { path: "$.next_page_token", param: "page_token" },
  { path: "$.nextPageToken", param: "pageToken" },
  { path: "$.response_metadata.next_cursor", param: "cursor" },
  { path: "$.meta.next_cursor", param: "cursor" },
  { path: "$.meta.after_cursor", param: "page[after]" },
  { path: "$.paging.cursors.after", param: "after" },
  { path: "$.paging.next.after", param: "after" },
  { path: "$.pagination.next_cursor", param: "cursor" },
];

export const NEXT_URL_PATHS: readonly string[] = [
  "$.next",
  "$['@odata.nextLink']",
  "$.links.next",
  "$._links.next.href",
  "$.pagination.next",
  "$.paging.next",
  "$.next_page_url",
  "$.after_url",
  "$.meta.next",
];

/** `has_more`-style flags: the stream stops when false. */
export const HAS_MORE_PATHS: readonly string[] = ["$.has_more", "$.hasMore", "$.more", "$.meta.has_more"];
/** `end_of_stream`-style flags: the stream stops when true. */
export const DONE_PATHS: readonly string[] = ["$.end_of_stream", "$.meta.end_of_stream"];

/** `, has_more: …` or `, done: …` for a paginate flow map, from the flags the body has. */
export function stopFlag(hasMore: string | undefined, done: string | undefined): string {
  if (hasMore) return `, has_more: ${hasMore}`;
  if (done) return `, done: ${done}`;
  return "";
}

/**
 * The stream's name: the URL's last path segment (`/api/v2/tickets.json` → `tickets`), as a
 * plain name; `fallback` (the pipeline's name) when there is none.
 */
export function streamNameFor(url: URL | null, fallback: string): string {
  if (!url) return fallback;
  const segments = url.pathname.split("/").filter(Boolean);
  for (let i = segments.length - 1; i >= 0; i--) {
    let s: string;
    try {
      s = decodeURIComponent(segments[i]);
    } catch {
      s = segments[i];
    }
    const name = s
      .replace(/\.[A-Za-z0-9]{1,5}$/, "")
      .replace(/[^A-Za-z0-9_]+/g, "_")
      .replace(/^_+|_+$/g, "");
    // An id (`/users/42`) or a version (`/v2`) names no stream.
    if (/^[A-Za-z][A-Za-z0-9_]*$/.test(name) && !/^v\d+$/i.test(name)) return name.slice(0, 64);
  }
  return fallback;
}
