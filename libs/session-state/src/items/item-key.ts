/**
 * A typed key for request items, unique by identity: the seed's "unique object keys". Libraries
 * export one so that no other code can collide with their item, and `get` needs no cast.
 *
 * @example
 * export const IS_VERIFIED = new ItemKey<boolean>('isVerified');
 * items.set(IS_VERIFIED, true);
 * const verified = items.get(IS_VERIFIED); // boolean | undefined
 */
export class ItemKey<T> {
  /** Only for the type checker: carries `T`. */
  declare readonly __type?: T;

  constructor(
    /** Shown in debugging output; two keys with the same description are still different keys. */
    readonly description: string,
  ) {}

  toString(): string {
    return `ItemKey(${this.description})`;
  }
}
