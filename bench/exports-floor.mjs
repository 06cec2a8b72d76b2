// The floor for exports: fetch one response over undici, gunzip it when asked, split it into
// lines and parse each line (JSON.parse, or a split on commas for CSV). With an output file, also
// write each record as a JSON line (the same job as the pipeline). Nothing more.
//   node bench/exports-floor.mjs <url> <jsonl|csv> [out file]
import { createWriteStream } from "node:fs";
import { createGunzip } from "node:zlib";
import { request } from "undici";

const [url, format, out] = process.argv.slice(2);
const res = await request(url);
let body = res.body;
if (format === "csv") body = res.body.pipe(createGunzip());
const file = out ? createWriteStream(out) : null;
let carry = "";
let count = 0;
let header = null;
for await (const chunk of body) {
  const text = carry + chunk.toString("utf8");
  const lines = text.split("\n");
  carry = lines.pop();
  let outText = "";
  for (const line of lines) {
    if (!line) continue;
    let rec;
    if (format === "jsonl") rec = JSON.parse(line);
    else {
      const cells = line.split(",");
      if (!header) {
        header = cells;
        continue;
      }
      rec = {};
      for (let i = 0; i < header.length; i++) rec[header[i]] = cells[i];
    }
    count++;
    if (file) outText += `${JSON.stringify(rec)}\n`;
  }
  if (file && !file.write(outText)) await new Promise((r) => file.once("drain", r));
}
if (file) await new Promise((r) => file.end(r));
process.stderr.write(`floor: ${count} records\n`);
