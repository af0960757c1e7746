import { Injectable } from '@nestjs/common';
import { currentRequestState } from '../request/request-state.access.js';
import type { RequestItems } from './request-items.js';

/**
 * The current request's items for middleware and singleton services (AsyncLocalStorage).
 *
 * @example
 * \@Injectable()
 * export class VerifyMiddleware implements NestMiddleware {
 *   constructor(private readonly items: ItemsAccessor) {}
 *   use(_req: unknown, _res: unknown, next: () => void) {
 *     this.items.current.set('isVerified', true);
 *     next();
 *   }
 * }
 */
@Injectable()
export class ItemsAccessor {
  /** The bag of the request being handled; throws when there is none. */
  get current(): RequestItems {
    return currentRequestState('Request items').items;
  }
}
