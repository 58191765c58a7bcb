import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Suites share one Docker engine, one Swarm and one registry: run files one at a time
    // so they never fight over the same engine, while tests inside a file stay fast.
    fileParallelism: false,
    reporters: ['default'],
  },
});
