import type { ItemKey } from './item-key.js';

/**
 * A key of the items bag: a string, a symbol, or a typed {@link ItemKey}.
 *
 * @example
 * const keys: RequestItemKey[] = ['isVerified', Symbol('trace'), new ItemKey<number>('count')];
 */
export type RequestItemKey = string | symbol | ItemKey<unknown>;

/**
 * Values that live for one request: ASP.NET's `HttpContext.Items`. Middleware, guards, interceptors,
 * pipes, handlers, filters and singleton services of the same request see the same bag; another
 * request never does. Code the request started (a timer) still reaches it after the response, as in
 * ASP.NET; do not rely on that: the bag is for the request.
 *
 * @example
 * items.set('isVerified', true);          // in a middleware
 * const ok = items.get<boolean>('isVerified'); // in the handler
 */
export class RequestItems {
  private readonly values = new Map<RequestItemKey, unknown>();

  get<T>(key: ItemKey<T>): T | undefined;
  get<T = unknown>(key: string | symbol): T | undefined;
  get(key: RequestItemKey): unknown {
    return this.values.get(key);
  }

  // NoInfer: the key alone decides T. Inferred from the value too, T widened to fit it (null, a union,
  // a supertype), and get(key) then promised a T the bag did not hold.
  set<T>(key: ItemKey<T>, value: NoInfer<T>): this;
  set(key: string | symbol, value: unknown): this;
  set(key: RequestItemKey, value: unknown): this {
    this.values.set(key, value);
    return this;
  }

  has(key: RequestItemKey): boolean {
    return this.values.has(key);
  }

  delete(key: RequestItemKey): boolean {
    return this.values.delete(key);
  }

  get size(): number {
    return this.values.size;
  }

  keys(): IterableIterator<RequestItemKey> {
    return this.values.keys();
  }

  /** Drops every item. */
  clear(): void {
    this.values.clear();
  }
}
