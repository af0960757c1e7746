/** Jest in ESM mode with @swc/jest (see ../shared/TOOLCHAIN.md). */
const swc = [
  '@swc/jest',
  {
    jsc: {
      target: 'es2022',
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
    },
    module: { type: 'es6' },
    sourceMaps: 'inline',
  },
];

export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swc },
  moduleNameMapper: {
    '^nest-session-state$': '<rootDir>/libs/session-state/src/index.ts',
    '^nest-session-state/redis$': '<rootDir>/libs/session-state/src/redis.ts',
    '^nest-session-state/postgres$': '<rootDir>/libs/session-state/src/postgres.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testMatch: [
    '<rootDir>/libs/*/src/**/*.spec.ts',
    '<rootDir>/libs/*/test/**/*.spec.ts',
    '<rootDir>/test/**/*.spec.ts',
  ],
  testTimeout: 30000,
  setupFiles: ['<rootDir>/test/support/setup-env.ts'],
};
