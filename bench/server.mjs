// Bench API: cursor pages of 1,000 generated records (~170 bytes each), no added latency by
// default. Also offset and page endpoints with a latency option, for the concurrency bench.
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

function record(i) {
  return `{"id":${i},"name":"record-${i}","email":"user${i % 9973}@example.com","created_at":"2024-0${1 + (i % 9)}-1${i % 10}T0${i % 10}:00:00Z","amount":${(i % 10000) / 100},"active":${i % 3 !== 0},"tags":["t${i % 7}","t${i % 11}"],"owner":{"id":${i % 101}}}`;
}
function page(from, to) {
  const parts = [];
  for (let i = from; i < to; i++) parts.push(record(i));
  return parts.join(",");
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
    return send(`{"data":[${page(from, to)}],"next_cursor":${next}}`);
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
