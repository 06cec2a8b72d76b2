import { randomBytes } from "node:crypto";

/**
 * What newRunId makes: `20260101T000000Z-a1b2c3`. A run id read back from a file (a lock) is
 * used to find a killed run's files only when it has this shape: it never names a path.
 */
export const RUN_ID = /^\d{8}T\d{6}Z-[0-9a-f]{6}$/;

export function newRunId(now = new Date()): string {
  return `${now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z")}-${randomBytes(3).toString("hex")}`;
}
