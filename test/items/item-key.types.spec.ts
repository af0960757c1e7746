/**
 * Type-level tests: `tsc -p tsconfig.json --noEmit` checks this file (it is in the project), so a typed key
 * that lost its type, or a wrong assignment that stopped being an error, fails the type check. The
 * `@ts-expect-error` lines fail tsc when the line below them is NOT an error. Jest runs the same code.
 */
import { Item, ItemKey, RequestItems, type RequestItemKey } from 'nest-session-state';

interface User {
  id: string;
  roles: string[];
}

const COUNT = new ItemKey<number>('count');
const USER = new ItemKey<User>('user');
const IS_VERIFIED = new ItemKey<boolean>('isVerified');

describe('ItemKey<T>: get(key) is typed without casts', () => {
  it('get returns T | undefined for a typed key, and set only accepts T', () => {
    const items = new RequestItems();
    items
      .set(COUNT, 3)
      .set(USER, { id: 'u1', roles: ['admin'] })
      .set(IS_VERIFIED, true);

    const n: number | undefined = items.get(COUNT);
    const user: User | undefined = items.get(USER);
    const verified: boolean | undefined = items.get(IS_VERIFIED);
    // Members of T are reachable without a cast.
    const firstRole: string | undefined = items.get(USER)?.roles[0];
    const doubled: number = (items.get(COUNT) ?? 0) * 2;

    // @ts-expect-error -- COUNT holds numbers: its value is not a string.
    const wrong: string | undefined = items.get(COUNT);
    // @ts-expect-error -- get(COUNT) may be undefined: not assignable to plain number.
    const notUndefined: number = items.get(COUNT);
    // @ts-expect-error -- USER holds a User: a number is rejected at set.
    items.set(USER, 42);
    // @ts-expect-error -- IS_VERIFIED holds booleans: the string "yes" is rejected.
    items.set(IS_VERIFIED, 'yes');

    expect({ n, user, verified, firstRole, doubled }).toEqual({
      n: 3,
      user: { id: 'u1', roles: ['admin'] },
      verified: true,
      firstRole: 'admin',
      doubled: 6,
    });
    // The rejected calls still ran at runtime (types only); what matters is that tsc flagged them.
    expect([wrong, notUndefined]).toEqual([3, 3]);
  });

  it('set does not widen T to fit the value: get(key) never returns what T does not allow', () => {
    const items = new RequestItems();
    const fromOutside = JSON.parse('null') as unknown;
    const maybeCount = undefined as number | undefined;
    const countOrLabel = 'three' as number | string;
    const someObject: object = {};
    const partialUser: Partial<User> = { id: 'u1' };
    // @ts-expect-error -- COUNT holds numbers: null is not one (T must not widen to number | null).
    items.set(COUNT, null);
    // @ts-expect-error -- COUNT holds numbers: a value that may be undefined is not one.
    items.set(COUNT, maybeCount);
    // @ts-expect-error -- COUNT holds numbers: number | string is not (T must not widen to the union).
    items.set(COUNT, countOrLabel);
    // @ts-expect-error -- COUNT holds numbers: an unknown value needs checking first.
    items.set(COUNT, fromOutside);
    // @ts-expect-error -- USER holds a User: any object is not one (T must not widen to object).
    items.set(USER, someObject);
    // @ts-expect-error -- USER holds a User: one without its roles is not.
    items.set(USER, partialUser);

    // What those calls let through at runtime, under types that promise a number and a User with roles.
    const count: number | undefined = items.get(COUNT);
    const roles: string[] | undefined = items.get(USER)?.roles;
    expect([count, roles]).toEqual([null, undefined]);
  });

  it('string and symbol keys give unknown unless the caller names a type', () => {
    const items = new RequestItems();
    items.set('isVerified', true);
    const raw = items.get('isVerified');
    // @ts-expect-error -- a string key carries no type: unknown is not assignable to boolean.
    const notTyped: boolean | undefined = raw;
    const named: boolean | undefined = items.get<boolean>('isVerified');
    expect([notTyped, named]).toEqual([true, true]);
  });

  it('keys are strings, symbols or ItemKeys; @Item() accepts the same', () => {
    const keys: RequestItemKey[] = ['x', Symbol('x'), new ItemKey<string>('x')];
    // @ts-expect-error -- numbers are not item keys.
    const badKey: RequestItemKey = 42;
    expect(typeof Item(COUNT)).toBe('function');
    // @ts-expect-error -- numbers are not item keys for @Item() either.
    Item(42);
    expect([keys.length, badKey]).toEqual([3, 42]);
  });

  it('an ItemKey<number> is not an ItemKey<string>', () => {
    const asNumberKey: ItemKey<number> = COUNT;
    // @ts-expect-error -- the key's value type is part of its type.
    const asStringKey: ItemKey<string> = COUNT;
    expect(asStringKey).toBe(asNumberKey);
    expect(String(COUNT)).toBe('ItemKey(count)');
  });
});
