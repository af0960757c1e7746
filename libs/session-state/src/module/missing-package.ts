/**
 * Whether `error`, from loading a module, says the package `name` is not installed: `ERR_MODULE_NOT_FOUND` from the
 * ES build's `import()`, `MODULE_NOT_FOUND` from the CommonJS build's `require()` (dist/cjs), each naming it in quotes.
 */
export function isMissingPackage(error: unknown, name: string): boolean {
  const { code, message } = error as { code?: string; message?: string };
  if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') return false;
  return (message ?? '').includes(`'${name}'`) || (message ?? '').includes(`"${name}"`);
}
