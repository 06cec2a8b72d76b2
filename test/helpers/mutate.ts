/**
 * `text` with `times` random edits, each a character (from `chars`) put in place of one, a
 * character removed, or one inserted: near-misses of valid inputs for differential tests.
 */
export function mutate(
  rnd: () => number,
  text: string,
  chars: readonly string[] | string,
  times: number,
): string {
  const arr = Array.from(text);
  for (let j = 0; j < times; j++) {
    const p = Math.floor(rnd() * (arr.length + 1));
    const op = rnd();
    const ch = chars[Math.floor(rnd() * chars.length)];
    if (op < 0.4) arr[p] = ch;
    else if (op < 0.7) arr.splice(p, 1);
    else arr.splice(p, 0, ch);
  }
  return arr.join("");
}
