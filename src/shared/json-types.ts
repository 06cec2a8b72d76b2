/**
 * The JSON types of a value as numbers, in one order for everything that counts them without the
 * value itself: quality.ts's TYPE_NAMES (the report's field statistics), canonical-line.ts and
 * records/byte-check.ts (read from bytes), the table writers' column types (outputs/table-shape.ts).
 */
export const T_NULL = 0;
export const T_ARRAY = 1;
export const T_OBJECT = 2;
export const T_STRING = 3;
export const T_BOOLEAN = 4;
export const T_INTEGER = 5;
export const T_NUMBER = 6;
