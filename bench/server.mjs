// Bench API: cursor pages of 1,000 generated records (~170 bytes each), no added latency by
// default; `/cursor?style=spaced|escaped` writes the same records with white space or escapes. Also offset and page endpoints with a latency option, for the concurrency bench.
//   node bench/server.mjs --port 0 [--latency 50]   → prints {"url": …} on stdout
import http from "node:http";

const args = Object.fromEntries(
  process.argv
    .slice(2)
    .join(" ")
    .split("--")
    .filter(Boolean)
    .map((a) => a.trim().split(/\s+/)),
);
const latency = Number(args.latency ?? 0);
const PAGE = 1000;

/**
 * Record i as JSON text. `style` writes the same value as other APIs do: `spaced` with `", "` and
 * `": "` (Python's json.dumps), `escaped` with `\u` escapes JSON.stringify does not write.
 */
function record(i, style) {
  const c = style === "spaced" ? ", " : ",";
  const k = style === "spaced" ? ": " : ":";
  const name = style === "escaped" ? `\\u0072ecord\\u002d${i}` : `record-${i}`;
  return `{"id"${k}${i}${c}"name"${k}"${name}"${c}"email"${k}"user${i % 9973}@example.com"${c}"created_at"${k}"2024-0${1 + (i % 9)}-1${i % 10}T0${i % 10}:00:00Z"${c}"amount"${k}${(i % 10000) / 100}${c}"active"${k}${i % 3 !== 0}${c}"tags"${k}["t${i % 7}"${c}"t${i % 11}"]${c}"owner"${k}{"id"${k}${i % 101}}}`;
}
function page(from, to, style) {
  const parts = [];
  for (let i = from; i < to; i++) parts.push(record(i, style));
  return parts.join(style === "spaced" ? ", " : ",");
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  const total = Number(url.searchParams.get("n") ?? 200000);
  const send = (body) => {
    const go = () => {
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
      res.end(body);
    };
    if (latency) setTimeout(go, latency);
    else go();
  };
  if (url.pathname === "/cursor") {
    const from = Number(url.searchParams.get("cursor") ?? 0);
    const to = Math.min(total, from + PAGE);
    const next = to < total ? `"${to}"` : "null";
    return send(`{"data":[${page(from, to, url.searchParams.get("style"))}],"next_cursor":${next}}`);
  }
  if (url.pathname === "/offset") {
    const offset = Number(url.searchParams.get("offset") ?? 0);
    const limit = Math.min(100, Number(url.searchParams.get("limit") ?? 100));
    const to = Math.min(total, offset + limit);
    return send(
      `{"items":[${offset < total ? page(offset, to) : ""}]${url.searchParams.has("with_total") ? `,"total":${total}` : ""}}`,
    );
  }
  if (url.pathname === "/page") {
    const p = Number(url.searchParams.get("page") ?? 1);
    const size = Math.min(100, Number(url.searchParams.get("per_page") ?? 100));
    const from = (p - 1) * size;
    const to = Math.min(total, from + size);
    return send(`{"results":[${from < total ? page(from, to) : ""}]}`);
  }
  res.writeHead(404).end("{}");
});
server.keepAliveTimeout = 30_000;
server.listen(Number(args.port ?? 0), "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` })}\n`);
});
