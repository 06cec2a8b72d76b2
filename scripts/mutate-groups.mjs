// The safety core, in groups: the modules Stryker mutates and the test files aimed at them.
export const groups = {
  redaction: {
    mutate: ["src/shared/secrets.ts", "src/shared/errors.ts"],
    tests: ["test/shared/*.test.ts", "test/security/secrets.test.ts", "test/security/error-texts.test.ts"],
  },
  paginators: {
    mutate: ["src/http/paginators/*.ts"],
    tests: ["test/http/paginators/*.test.ts", "test/run/pagination.test.ts"],
  },
  retry: {
    mutate: ["src/http/retry-policy.ts", "src/http/rate-budget.ts"],
    tests: ["test/http/retry-policy.test.ts", "test/http/rate-budget.test.ts", "test/http/classify.test.ts"],
  },
  oauth2: {
    mutate: ["src/http/auth/oauth2.ts"],
    tests: ["test/http/auth/*.test.ts", "test/run/oauth-token-wait.test.ts"],
  },
  atomic: {
    mutate: ["src/outputs/atomic-file.ts", "src/shared/atomic-write.ts", "src/state/state-store.ts"],
    tests: ["test/outputs/atomic-file.test.ts", "test/state/*.test.ts", "test/security/paths.test.ts"],
  },
  lock: {
    mutate: ["src/run/run-lock.ts"],
    tests: ["test/run/run-lock*.test.ts", "test/security/paths.test.ts", "test/pg/run-lock.test.ts"],
  },
  quality: {
    mutate: ["src/run/quality-gate.ts", "src/records/quality.ts"],
    tests: ["test/quality/*.test.ts", "test/run/quality-gate.test.ts", "test/records/quality.test.ts"],
  },
};
