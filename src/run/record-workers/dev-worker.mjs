// The record worker from the sources (tests run src/ through vitest, not dist/): tsx compiles
// worker.ts and what it imports. The built CLI starts dist/app/record-worker.cjs instead (pool.ts).
import { tsImport } from "tsx/esm/api";

await tsImport("./worker.ts", import.meta.url);
