import { defineConfig } from 'vitest/config';

export const testConfig = defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    // End-to-end files each start their own local stack on free ports; two cores run them two at a time.
    fileParallelism: true,
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});

// biome-ignore lint/style/noDefaultExport: vitest loads its config from the default export.
export default testConfig;
