import { isMissingPackage } from './missing-package.js';

/** Errors as each loader throws them when a package is not installed. */
const missing = (code: string, message: string) => Object.assign(new Error(message), { code });

describe('isMissingPackage', () => {
  it.each([
    [
      'the ES build (import)',
      missing('ERR_MODULE_NOT_FOUND', "Cannot find package 'pg' imported from /app/x.js"),
    ],
    [
      'the CommonJS build (require)',
      missing('MODULE_NOT_FOUND', "Cannot find module 'pg'\nRequire stack:\n- /app/x.js"),
    ],
    ['Jest', missing('MODULE_NOT_FOUND', "Cannot find module 'pg' from 'dist/cjs/x.js'")],
  ])('recognises a missing package from %s', (_name, error) => {
    expect(isMissingPackage(error, 'pg')).toBe(true);
  });

  it('is false for another package, one whose name only starts the same, and any other error', () => {
    expect(isMissingPackage(missing('MODULE_NOT_FOUND', "Cannot find module 'pg-pool'"), 'pg')).toBe(false);
    expect(isMissingPackage(missing('MODULE_NOT_FOUND', "Cannot find module 'ioredis'"), 'pg')).toBe(false);
    expect(isMissingPackage(missing('EACCES', "permission denied 'pg'"), 'pg')).toBe(false);
    expect(isMissingPackage(new Error("Cannot find module 'pg'"), 'pg')).toBe(false);
  });
});
