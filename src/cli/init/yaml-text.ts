/** Text that `pipelines init` writes into a pipeline file: JSONPath members and YAML scalars. */

export const SIMPLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `$.name`, or `$['odd name']` for a name that needs brackets. */
export function member(parent: string, key: string): string {
  if (SIMPLE_NAME.test(key)) return `${parent}.${key}`;
  return `${parent}['${key.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}']`;
}

/**
 * A double-quoted YAML string for a value that came from the URL or the response (a key, a
 * JSONPath built from keys): `${` is written `$${`, the literal, so that a key such as
 * `items${env.HOME}` is not read as a template when the pipeline is loaded.
 */
export function quoted(value: string): string {
  return JSON.stringify(value).replaceAll("${", () => "$${");
}

/** A YAML scalar for a value from the URL: plain when safe, otherwise quoted(). */
export function scalar(value: string): string {
  if (/^[A-Za-z0-9/_.~-][A-Za-z0-9/_.,~ -]*$/.test(value) && !value.endsWith(" ")) return value;
  return quoted(value);
}
