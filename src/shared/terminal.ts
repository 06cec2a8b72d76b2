import type { Output } from "./output.js";

// C0 controls but tab and newline, DEL, C1 controls (U+009B is a one-character CSI on some
// terminals), and the bidi overrides and isolates that reorder what is displayed.
const UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;
// The same set, to test without allocating.
const HAS_UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

const escapeOne = (c: string): string => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;

/**
 * Text made safe for a terminal: every control character that a terminal would interpret
 * (escape sequences, bell, carriage return, backspace, bidi overrides) is shown as `\uXXXX`;
 * newline and tab are kept. Inside JSON text, `\uXXXX` is the same string, so JSON stays valid
 * and equal.
 */
export function terminalText(text: string): string {
  return HAS_UNSAFE.test(text) ? text.replace(UNSAFE, escapeOne) : text;
}

/**
 * The printing boundary: an output whose every write goes through terminalText. The CLI wraps
 * stdout and stderr once (main.ts), so every printer is covered. A renderer that draws with
 * escapes of its own (listr2) writes to `raw` and passes the texts it is given through
 * terminalText itself.
 */
export class TerminalOutput implements Output {
  readonly raw: Output;
  constructor(out: Output) {
    this.raw = out instanceof TerminalOutput ? out.raw : out;
  }
  write(chunk: string): unknown {
    return this.raw.write(terminalText(chunk));
  }
  get isTTY(): boolean | undefined {
    return this.raw.isTTY;
  }
  get columns(): number | undefined {
    return this.raw.columns;
  }
}

/** The output under a TerminalOutput (for a renderer that escapes its texts itself). */
export function rawOutput(out: Output): Output {
  return out instanceof TerminalOutput ? out.raw : out;
}
