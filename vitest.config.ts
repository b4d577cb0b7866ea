import { defineConfig } from 'vitest/config';

const ignore = ['**/node_modules/**', '**/dist/**', '.run/**', '.cache/**'];

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{schemas,config,connectors,pipeline,sinks,cli,util,infra,bench}/**/*.test.ts'],
          exclude: [...ignore, '**/*.int.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.int.test.ts'],
          exclude: ignore,
          // Integration tests share real servers and some kill them: one file at a time.
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 180_000,
          globalSetup: ['test/global-setup.ts'],
          env: { CDC_LOG_LEVEL: process.env.CDC_LOG_LEVEL ?? 'error' },
        },
      },
    ],
  },
});
