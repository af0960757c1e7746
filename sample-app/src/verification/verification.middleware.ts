import { Injectable, type NestMiddleware } from '@nestjs/common';
import { ItemKey, ItemsAccessor } from 'nest-session-state';

/**
 * The request item set by {@link VerificationMiddleware}: a typed, unique key (the seed's "unique object
 * key"), so no other code can collide with it and readers get a `boolean` without a cast.
 */
export const IS_VERIFIED = new ItemKey<boolean>('isVerified');

/**
 * The seed's `HttpContextItemsMiddleware`: "performs some verification" and records the outcome as a
 * request item that the handlers (and any singleton service) read later in the same request.
 * It only touches request items, so it never creates a session or a cookie.
 */
@Injectable()
export class VerificationMiddleware implements NestMiddleware {
  constructor(private readonly items: ItemsAccessor) {}

  use(_req: unknown, _res: unknown, next: (error?: unknown) => void): void {
    // perform some verification
    this.items.current.set(IS_VERIFIED, true);
    next();
  }
}
