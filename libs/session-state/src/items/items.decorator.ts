import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { requestStateOf } from '../request/request-state.access.js';
import type { ItemKey } from './item-key.js';
import type { RequestItems } from './request-items.js';

/**
 * Handler parameter decorator: the request's {@link RequestItems} bag.
 * @example handle(\@Items() items: RequestItems) { return items.get<boolean>('isVerified'); }
 */
export const Items: () => ParameterDecorator = createParamDecorator(
  (_data: unknown, context: ExecutionContext): RequestItems => requestStateOf(context, '@Items()').items,
);

/**
 * Handler parameter decorator: one request item.
 * @example handle(\@Item(IS_VERIFIED) verified: boolean | undefined) {}
 */
export const Item: (key: string | symbol | ItemKey<unknown>) => ParameterDecorator = createParamDecorator(
  (key: string | symbol | ItemKey<unknown>, context: ExecutionContext): unknown =>
    requestStateOf(context, '@Item()').items.get(key as string),
);
