/** `1 record`, `3 records` (`many` for irregular plurals); `count` formats the number (`1,234`). */
export function plural(
  n: number,
  one: string,
  many = `${one}s`,
  count: (n: number) => string = String,
): string {
  return `${count(n)} ${n === 1 ? one : many}`;
}

let intl: Intl.NumberFormat | null = null;

/**
 * A number as en-US writes it (`1,234,567`, `0.125`). Integers are grouped here; other numbers go
 * to Intl, whose first use loads ICU's data (~9 ms): a run that formats only counts never pays it.
 */
export function formatNumber(n: number): string {
  if (Number.isSafeInteger(n)) {
    if (Object.is(n, -0)) return "-0";
    const digits = String(Math.abs(n));
    const grouped = digits.length > 3 ? digits.replace(/\B(?=(\d{3})+$)/g, ",") : digits;
    return n < 0 ? `-${grouped}` : grouped;
  }
  intl ??= new Intl.NumberFormat("en-US");
  return intl.format(n);
}
