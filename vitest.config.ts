import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The 6 GB copy (about two minutes) starts first, so the other files run beside it on the second
 * worker instead of after it; the rest keep vitest's own order (slowest first once it has timings).
 */
class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const first = (file: TestSpecification) => (file.moduleId.endsWith('/large-copy.test.ts') ? 0 : 1);
    return [...sorted].sort((a, b) => first(a) - first(b));
  }
}

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
    sequence: { sequencer: LongestFirst },
    // The SDK's notice that its 2027 releases need Node 22; the project supports Node 20 on purpose.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});

// biome-ignore lint/style/noDefaultExport: vitest loads its config from the default export.
export default testConfig;
