import { defineConfig } from 'vitest/config';

/** `npm run test:unit`: the fast tier, no services (`*.unit.test.ts`); `npm test` runs these and everything else. */
export default defineConfig({
  test: {
    include: ['test/**/*.unit.test.ts'],
    testTimeout: 10_000,
    reporters: ['default'],
  },
});
