import { defineConfig } from 'vitest/config';

// Workspace packages resolve to their TypeScript sources through the `zimage-source` export
// condition, so tests, the demo and the CLI run without a build step.
const conditions = ['zimage-source'];

export default defineConfig({
  resolve: { conditions: [...conditions, 'node', 'import', 'default'] },
  ssr: { resolve: { conditions: [...conditions, 'node', 'import', 'default'], externalConditions: conditions } },
  test: {
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['packages/*/src/**/*.test.ts'],
          exclude: ['**/*.int.test.ts', '**/node_modules/**'],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['packages/*/src/**/*.int.test.ts', 'test/**/*.int.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          // One Redis for the run; files run one at a time so timing-sensitive tests (quota,
          // throttling) do not share two cores with each other.
          fileParallelism: false,
          testTimeout: 90_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
