import { createRequire } from 'node:module';

type Transformer = {
  plainToInstance<T>(cls: new (...args: never[]) => T, plain: unknown): T;
  instanceToPlain(object: unknown): unknown;
};

let loaded: Transformer | null | undefined;

/** class-transformer when the app has installed it (an optional peer dependency), else null. */
export function loadClassTransformer(): Transformer | null {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)('class-transformer') as Transformer;
    } catch {
      loaded = null;
    }
  }
  return loaded;
}
