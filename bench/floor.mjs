// The floor: the least a Node script can do for the same job — fetch the cursor pages over
// keep-alive, JSON.parse them, write each record as a JSON line. Nothing more.
//   node bench/floor.mjs <base url> <n> <out file> [fetch-only]
// `fetch-only`: the API's own pace — each page read whole, its cursor taken from its last bytes
// (the bench server ends each page with `"next_cursor":…}`), nothing parsed or written.
import { createWriteStream } from "node:fs";
import { Pool } from "undici";

const [base, n, out, mode] = process.argv.slice(2);
const pool = new Pool(base, { connections: 1 });
const file = createWriteStream(out);
let cursor = null;
let count = 0;
do {
  const res = await pool.request({
    path: `/cursor?n=${n}${cursor ? `&cursor=${cursor}` : ""}`,
    method: "GET",
  });
  if (mode === "fetch-only") {
    const text = await res.body.text();
    const m = /"next_cursor":(?:null|"([^"]*)")\}$/.exec(text.slice(-200));
    cursor = m?.[1] ?? null;
    count += 1;
    continue;
  }
  const body = JSON.parse(await res.body.text());
  let chunk = "";
  for (const r of body.data) {
    chunk += `${JSON.stringify(r)}\n`;
    count++;
  }
  if (!file.write(chunk)) await new Promise((r) => file.once("drain", r));
  cursor = body.next_cursor;
} while (cursor);
await new Promise((r) => file.end(r));
await pool.close();
process.stderr.write(`floor: ${count} ${mode === "fetch-only" ? "pages" : "records"}\n`);
