export interface Link {
  url: string;
  rels: string[];
  params: Record<string, string>;
}

/**
 * RFC 8288 `Link` header: `<url>; rel="next"; title="x", <url2>; rel="last first"`. Several
 * header lines may be joined with `, `. URLs may contain commas and semicolons.
 */
// Hand-written on purpose (compared with the npm packages): http-link-header throws on the whole
// header at one malformed link-value and keeps rel's case, and parse-link-header returns null past
// 2,000 characters (long cursor URLs); this one skips a bad value and keeps the good ones.
export function parseLinkHeader(header: string | string[] | undefined): Link[] {
  if (!header) return [];
  const text = Array.isArray(header) ? header.join(", ") : header;
  const links: Link[] = [];
  let i = 0;
  const n = text.length;
  const skipWs = () => {
    while (i < n && /[\s]/.test(text[i])) i++;
  };
  while (i < n) {
    skipWs();
    while (i < n && (text[i] === "," || /\s/.test(text[i]))) i++;
    if (i >= n) break;
    if (text[i] !== "<") {
      // Not a link-value: skip to the next top-level comma.
      while (i < n && text[i] !== ",") i++;
      continue;
    }
    const end = text.indexOf(">", i);
    if (end < 0) break;
    const url = text.slice(i + 1, end).trim();
    i = end + 1;
    const params: Record<string, string> = {};
    for (;;) {
      skipWs();
      if (text[i] !== ";") break;
      i++;
      skipWs();
      const m = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\*?/.exec(text.slice(i));
      if (!m) break;
      const name = m[0].toLowerCase();
      i += m[0].length;
      skipWs();
      let value = "";
      if (text[i] === "=") {
        i++;
        skipWs();
        if (text[i] === '"') {
          i++;
          while (i < n && text[i] !== '"') {
            if (text[i] === "\\" && i + 1 < n) i++;
            value += text[i];
            i++;
          }
          i++;
        } else {
          const v = /^[^;,\s]*/.exec(text.slice(i))![0];
          value = v;
          i += v.length;
        }
      }
      if (!(name in params)) params[name] = value;
    }
    links.push({ url, rels: (params.rel ?? "").toLowerCase().split(/\s+/).filter(Boolean), params });
  }
  return links;
}
