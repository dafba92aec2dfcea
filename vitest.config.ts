import { defineConfig } from 'vitest/config';

export const testConfig = defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    environment: 'node',
    // End-to-end files each start their own local stack on free ports; two cores run them two at a time.
    fileParallelism: true,
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    // The SDK's notice that its 2027 releases need Node 22; the project supports Node 20 on purpose.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});

// biome-ignore lint/style/noDefaultExport: vitest loads its config from the default export.
export default testConfig;
