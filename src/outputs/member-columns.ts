/**
 * A table writer's column for each top-level member of the records checked from their bytes
 * (records/byte-check.ts), by the member's position: the checker gives the name at a position as
 * the same string record after record, so a column is looked up again only where the name at its
 * position changed (Map lookups per member were 62 ms of a 200,000-record DuckDB run). Used by the
 * csv writer (csv-format.ts CsvColumns) and DuckDB's staging (duckdb-stager.ts Stager).
 */
export class MemberColumns<T> {
  private readonly names: string[] = [];
  private readonly columns: T[] = [];

  /** `lookup`: the column of a name, or undefined when it has none (that answer is not kept). */
  constructor(private readonly lookup: (name: string) => T | undefined) {}

  /** The column of member `k`, named `name`. */
  at(k: number, name: string): T | undefined {
    if (this.names[k] === name) return this.columns[k];
    const column = this.lookup(name);
    if (column !== undefined) {
      this.names[k] = name;
      this.columns[k] = column;
    }
    return column;
  }
}
