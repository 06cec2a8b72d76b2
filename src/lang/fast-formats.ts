/**
 * A faster `date-time` check with exactly ajv-formats' (full mode) semantics: RFC 3339, time zone
 * required, real calendar days, leap seconds only at 23:59:60 UTC. It reads characters by
 * position (no regex, no substrings): it runs once per record per date-time field, on the hot path.
 */
const DAYS = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Two digits at `i` as a number, or -1. */
export function twoDigits(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

export function isDateTime(s: string): boolean {
  const n = s.length;
  if (n < 20) return false;
  const y1 = twoDigits(s, 0);
  const y2 = twoDigits(s, 2);
  if (y1 < 0 || y2 < 0 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45) return false;
  const year = y1 * 100 + y2;
  const month = twoDigits(s, 5);
  const day = twoDigits(s, 8);
  const sep = s.charCodeAt(10);
  // T, t, or white space (ajv-formats splits on /t|\s/i)
  if (sep !== 84 && sep !== 116 && !/\s/.test(s[10])) return false;
  const hr = twoDigits(s, 11);
  const min = twoDigits(s, 14);
  const sec = twoDigits(s, 17);
  if (
    month < 1 ||
    day < 0 ||
    hr < 0 ||
    min < 0 ||
    sec < 0 ||
    s.charCodeAt(13) !== 58 ||
    s.charCodeAt(16) !== 58
  )
    return false;
  if (!isDay(year, month, day)) return false;
  let i = 19;
  if (s.charCodeAt(i) === 46) {
    // fraction: at least one digit
    const start = ++i;
    while (i < n && s.charCodeAt(i) >= 48 && s.charCodeAt(i) <= 57) i++;
    if (i === start) return false;
  }
  const z = s.charCodeAt(i);
  let tzSign = 1;
  let tzH = 0;
  let tzM = 0;
  if (z === 90 || z === 122) {
    if (i + 1 !== n) return false;
  } else if (z === 43 || z === 45) {
    tzSign = z === 45 ? -1 : 1;
    tzH = twoDigits(s, i + 1);
    if (tzH < 0) return false;
    i += 3;
    if (i < n) {
      if (s.charCodeAt(i) === 58) i++;
      tzM = twoDigits(s, i);
      if (tzM < 0 || i + 2 !== n) return false;
    }
  } else return false;
  return isTime(hr, min, sec, tzSign, tzH, tzM);
}

/** A real calendar day (month ≥ 1 already checked; month and day read as two digits). */
export function isDay(year: number, month: number, day: number): boolean {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return month <= 12 && day >= 1 && day <= (month === 2 && leap ? 29 : DAYS[month]);
}

/** A time of day with its offset; a leap second only at 23:59:60 UTC. */
function isTime(hr: number, min: number, sec: number, tzSign: number, tzH: number, tzM: number): boolean {
  if (tzH > 23 || tzM > 59) return false;
  if (hr <= 23 && min <= 59 && sec < 60) return true;
  const utcMin = min - tzM * tzSign;
  const utcHr = hr - tzH * tzSign - (utcMin < 0 ? 1 : 0);
  return (utcHr === 23 || utcHr === -1) && (utcMin === 59 || utcMin === -1) && sec < 61;
}

/** Two digits at `i` of bytes as a number, or -1. */
function twoAt(b: Uint8Array, i: number): number {
  const x = b[i] - 48;
  const y = b[i + 1] - 48;
  return x >= 0 && x <= 9 && y >= 0 && y <= 9 ? x * 10 + y : -1;
}

/**
 * isDateTime of a canonical JSON string's content (UTF-8, escapes only `\"`, `\\`, `\b`, `\f`,
 * `\n`, `\r`, `\t`: no `\/`, no `\u`), from its bytes [s, e), without making the string. The
 * byte at `e` is its closing quote, which no part accepts: the reading stops there as the
 * string's stops at its end. Null when unsure: the separator is not ASCII, an escape or a control
 * byte (white space other than a space: isDateTime of the string decides). Anywhere else a byte
 * that is not ASCII, or an escape, makes both say false: only ASCII digits, `-`, `:`, `.`, `T`,
 * `Z`, `+` are read there.
 */
export function isDateTimeBytes(b: Uint8Array, s: number, e: number): boolean | null {
  if (e - s < 20) return false;
  const sep = b[s + 10];
  if (sep >= 0x80 || sep === 0x5c || sep < 0x20) return null;
  if (sep !== 84 && sep !== 116 && sep !== 32) return false;
  const y1 = twoAt(b, s);
  const y2 = twoAt(b, s + 2);
  const month = twoAt(b, s + 5);
  const day = twoAt(b, s + 8);
  const hr = twoAt(b, s + 11);
  const min = twoAt(b, s + 14);
  const sec = twoAt(b, s + 17);
  if (y1 < 0 || y2 < 0 || month < 1 || day < 0 || hr < 0 || min < 0 || sec < 0) return false;
  if (b[s + 4] !== 45 || b[s + 7] !== 45 || b[s + 13] !== 58 || b[s + 16] !== 58) return false;
  if (!isDay(y1 * 100 + y2, month, day)) return false;
  let i = s + 19;
  if (b[i] === 46) {
    const start = ++i;
    while (b[i] >= 48 && b[i] <= 57) i++;
    if (i === start) return false;
  }
  const z = b[i];
  let tzSign = 1;
  let tzH = 0;
  let tzM = 0;
  if (z === 90 || z === 122) {
    if (i + 1 !== e) return false;
  } else if (z === 43 || z === 45) {
    tzSign = z === 45 ? -1 : 1;
    tzH = twoAt(b, i + 1);
    if (tzH < 0) return false;
    i += 3;
    if (i < e) {
      if (b[i] === 58) i++;
      tzM = twoAt(b, i);
      if (tzM < 0 || i + 2 !== e) return false;
    }
  } else return false;
  return isTime(hr, min, sec, tzSign, tzH, tzM);
}

/** Characters of an atom of an email's local part (ajv-formats' full `email`, case-insensitive). */
const LOCAL = new Uint8Array(128);
/** Letters and digits (a domain label's ends). */
const ALNUM = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  if (/[a-z0-9]/i.test(ch)) ALNUM[c] = 1;
  if (/[a-z0-9!#$%&'*+/=?^_`{|}~-]/i.test(ch)) LOCAL[c] = 1;
}

/**
 * A faster `email` check with exactly ajv-formats' full-mode regex semantics
 * (`^[a-z0-9!#$%&'*+/=?^_\`{|}~-]+(?:\.[…]+)*@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$`
 * with `i`, no `u`: only ASCII letters fold): dot-separated atoms, `@`, two or more dot-separated
 * labels of letters, digits and inner hyphens. Characters by position, no regex.
 */
export function isEmail(s: string): boolean {
  const n = s.length;
  let i = 0;
  for (;;) {
    const start = i;
    for (let c = s.charCodeAt(i); c < 128 && LOCAL[c] === 1; c = s.charCodeAt(++i));
    if (i === start) return false;
    if (s.charCodeAt(i) !== 46) break;
    i++;
  }
  if (s.charCodeAt(i) !== 64) return false;
  i++;
  for (let labels = 1; ; labels++) {
    if (!(ALNUM[s.charCodeAt(i)] === 1)) return false;
    for (let c = s.charCodeAt(++i); c < 128 && (ALNUM[c] === 1 || c === 45); c = s.charCodeAt(++i));
    if (s.charCodeAt(i - 1) === 45) return false;
    if (i === n) return labels >= 2;
    if (s.charCodeAt(i) !== 46) return false;
    i++;
  }
}

/**
 * isEmail of a canonical JSON string's content (escapes as isDateTimeBytes says: a `\/` or `\u`
 * escape would stand for a character the bytes do not show), from its bytes [s, e) (the byte at
 * `e` is its closing quote, which no part accepts), without making the string. The same answer:
 * a byte that is not ASCII, or an escape's backslash, is accepted nowhere, as the characters
 * they stand for are not.
 */
export function isEmailBytes(b: Uint8Array, s: number, e: number): boolean {
  let i = s;
  for (;;) {
    const start = i;
    for (let c = b[i]; c < 128 && LOCAL[c] === 1; c = b[++i]);
    if (i === start) return false;
    if (b[i] !== 46) break;
    i++;
  }
  if (b[i] !== 64) return false;
  i++;
  for (let labels = 1; ; labels++) {
    if (!(ALNUM[b[i]] === 1)) return false;
    for (let c = b[++i]; c < 128 && (ALNUM[c] === 1 || c === 45); c = b[++i]);
    if (b[i - 1] === 45) return false;
    if (i === e) return labels >= 2;
    if (b[i] !== 46) return false;
    i++;
  }
}
