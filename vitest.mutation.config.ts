/**
 * The unit tests StrykerJS runs against each mutant (`npm run test:mutation`): the fast, pure tests
 * of the modules where a silent break hurts most. Integration tests (processes, servers) are not
 * run per mutant; they stay in `npm test`.
 */
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: [
      "test/unit/aggregation/**/*.test.ts",
      "test/unit/coordinator/**/*.test.ts",
      "test/unit/eval/metrics.test.ts",
      "test/unit/model/api.test.ts",
      "test/unit/site-client/**/*.test.ts",
      "test/unit/study/**/*.test.ts",
    ],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
