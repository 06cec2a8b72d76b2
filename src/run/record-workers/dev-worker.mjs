// The record worker from the sources (tests run src/ through vitest, not dist/): tsx compiles
// worker.ts and what it imports. The built CLI starts dist/app/record-worker.cjs instead (pool.ts).
import { tsImport } from "tsx/esm/api";

// The pool's own test kind (test-kinds.ts), never in the build: registered before worker.ts loads
// and starts taking messages.
const { echoKind } = await tsImport("./test-kinds.ts", import.meta.url);
globalThis[Symbol.for("pipelines.extraWorkerKinds")] = { echo: echoKind };
await tsImport("./worker.ts", import.meta.url);
