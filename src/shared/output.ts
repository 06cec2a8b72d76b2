export interface Output {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}
