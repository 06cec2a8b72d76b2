/**
 * A stream's `path` joined to base_url: `https://x/v1` + `/users` or `users` → `https://x/v1/users`;
 * an absolute URL is kept; a query string in base_url (`?api-version=2`) is kept on every URL.
 */
export function joinUrl(baseUrl: string, path: string): string {
  if (/^https?:\/\//i.test(path)) return path;
  const base = new URL(baseUrl);
  const basePath = base.pathname.replace(/\/+$/, "");
  const rel = path.startsWith("/") ? path : `/${path}`;
  const joined = `${base.origin}${basePath}${rel}`;
  if (!base.search) return joined;
  const query = base.search.slice(1);
  return joined.includes("?") ? `${joined}&${query}` : `${joined}?${query}`;
}
