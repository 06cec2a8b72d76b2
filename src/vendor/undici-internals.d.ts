// undici ships no types for its internal files. These are the ones src/vendor/http-libs.ts
// takes instead of undici's index (the index does the same with them).
declare module "undici/lib/dispatcher/pool.js" {
  import type { Pool } from "undici";

  const PoolClass: typeof Pool;
  export default PoolClass;
}
declare module "undici/lib/dispatcher/dispatcher.js" {
  const DispatcherClass: { prototype: object };
  export default DispatcherClass;
}
declare module "undici/lib/api/index.js" {
  const api: Record<string, (...args: unknown[]) => unknown>;
  export default api;
}
