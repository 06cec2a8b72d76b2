/** `1 record`, `3 records` (`many` for irregular plurals); `count` formats the number (`1,234`). */
export function plural(
  n: number,
  one: string,
  many = `${one}s`,
  count: (n: number) => string = String,
): string {
  return `${count(n)} ${n === 1 ? one : many}`;
}
