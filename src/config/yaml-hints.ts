/**
 * Three YAML mistakes whose parser errors are a cascade at the wrong line: a tab indent, an
 * unquoted `${…}` inside `{ }`, and an indent one space off. Found from the text, and reported as
 * one line that says what to do, at the line to fix. Only used when the parser found errors, for
 * a line at, before or just after its first one.
 */
export interface YamlHint {
  /** Offset of the character to fix. */
  offset: number;
  message: string;
}

interface Line {
  n: number;
  start: number;
  text: string;
}

export function yamlHint(text: string, firstErrorOffset: number): YamlHint | null {
  const lines: Line[] = [];
  let start = 0;
  for (const [i, t] of text.split("\n").entries()) {
    lines.push({ n: i + 1, start, text: t.replace(/\r$/, "") });
    start += t.length + 1;
  }
  // The parser may place its error at the line before the one to fix (an extra space of indent
  // makes the line above a multi-line key).
  const errorLine = lines.findLastIndex((l) => l.start <= firstErrorOffset);
  const upTo = lines.slice(0, errorLine + 2);
  return tabIndent(upTo) ?? unquotedTemplate(upTo) ?? offByOne(upTo);
}

function tabIndent(lines: Line[]): YamlHint | null {
  for (const l of lines) {
    const m = /^( *)\t/.exec(l.text);
    if (m && l.text.trim() !== "")
      return {
        offset: l.start + m[1].length,
        message: `line ${l.n} is indented with a tab: YAML indents with spaces only (replace the tab with spaces)`,
      };
  }
  return null;
}

const FLOW_TEMPLATE = /[{,]\s*[^{}"',]*:\s*(\$\{[^}]*\}[^,}]*)/;

function unquotedTemplate(lines: Line[]): YamlHint | null {
  for (const l of lines) {
    const code = l.text.replace(/\s#.*$/, "");
    const m = FLOW_TEMPLATE.exec(code);
    if (!m || m.index === undefined) continue;
    const value = m[1].trim();
    return {
      offset: l.start + m.index + m[0].indexOf("$"),
      message: `quote the template on line ${l.n}: write "${value}" — inside \`{ }\`, the \`{\` of an unquoted \`\${…}\` starts a YAML map`,
    };
  }
  return null;
}

/** The block structure's indents, as the lines open them; a line off by one from them is the hint. */
function offByOne(lines: Line[]): YamlHint | null {
  const stack: number[] = [0];
  let opens = false;
  let scalarAt: number | null = null;
  for (const l of lines) {
    const body = l.text.replace(/^ */, "");
    if (body === "" || body.startsWith("#")) continue;
    const n = l.text.length - body.length;
    if (scalarAt !== null) {
      if (n > scalarAt) continue;
      scalarAt = null;
    }
    if (opens && n > stack[stack.length - 1]) stack.push(n);
    else {
      // The sibling indent the line most likely meant: the previous line's, else its parent's.
      let previous: number | null = null;
      while (stack.length > 1 && stack[stack.length - 1] > n) previous = stack.pop() ?? null;
      const expected = stack[stack.length - 1];
      if (n !== expected) {
        const near = previous !== null && Math.abs(n - previous) === 1 ? previous : expected;
        if (Math.abs(n - near) === 1)
          return {
            offset: l.start + n,
            message: `the indent of line ${l.n} is off by one: ${n} spaces where the lines around it use ${near}`,
          };
        return null;
      }
    }
    const code = body.replace(/\s#.*$/, "").trimEnd();
    if (body.startsWith("- ")) stack.push(n + 2);
    opens = code.endsWith(":");
    if (/:\s*[|>][-+0-9]*$/.test(code)) scalarAt = n;
  }
  return null;
}
