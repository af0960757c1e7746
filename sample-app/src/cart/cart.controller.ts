import { Body, Controller, Get, Post, Redirect, Render, Res, UseFilters } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { Session, TempData } from 'nest-session-state';
import { page } from '../layout/page.js';
import { SessionErrorPageFilter } from '../errors/session-error-page.filter.js';

/** The cart, stored as one JSON value in the session (the seed's `Set<T>`/`Get<T>` extension methods). */
export interface Cart {
  lines: CartLine[];
}

export interface CartLine {
  item: string;
  quantity: number;
}

export const CART_KEY = 'cart';
const ERROR_KEY = 'CartError';
const MAX_ITEM_LENGTH = 60;
const MAX_LINES = 50;
const MAX_QUANTITY = 999;

/** Suggestions shown as one-click buttons (plain forms, no JavaScript). */
const SUGGESTIONS = ['Tea', 'Biscuits', 'Sonic screwdriver', 'Jelly babies'];

@UseFilters(SessionErrorPageFilter)
@Controller('cart')
export class CartController {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  @Get()
  @Render('cart')
  show(@Session() session: Session, @TempData(ERROR_KEY) error: string | undefined) {
    const cart = session.get<Cart>(CART_KEY) ?? { lines: [] };
    return page('cart', 'Cart', {
      lines: cart.lines,
      totalItems: cart.lines.reduce((sum, line) => sum + line.quantity, 0),
      error,
      suggestions: SUGGESTIONS,
      maxLength: MAX_ITEM_LENGTH,
    });
  }

  /**
   * Adds one `item` and redirects back by writing the response itself (`@Res()` and the platform's
   * `redirect`, on Express or Fastify). It commits first: a commit that fails (the store down, or another tab
   * signed in meanwhile) then reaches the error page (SessionErrorPageFilter), while one that failed after the
   * redirect was written would be answered by the library's JSON reply. The library's response hook commits
   * TempData before the 302 leaves, so the redirect carries its cookie and the session's.
   */
  @Post('add')
  async add(
    @Body('item') rawItem: unknown,
    @Session() session: Session,
    @TempData() tempData: TempData,
    @Res() res: unknown,
  ): Promise<void> {
    const item = typeof rawItem === 'string' ? rawItem.trim() : '';
    const cart = session.get<Cart>(CART_KEY) ?? { lines: [] };
    const line = cart.lines.find((l) => l.item.toLowerCase() === item.toLowerCase());
    if (item.length === 0 || item.length > MAX_ITEM_LENGTH) {
      tempData.set(ERROR_KEY, `Enter an item of 1 to ${MAX_ITEM_LENGTH} characters.`);
    } else if (!line && cart.lines.length >= MAX_LINES) {
      tempData.set(ERROR_KEY, `The cart holds at most ${MAX_LINES} different items.`);
    } else {
      if (line) line.quantity = Math.min(line.quantity + 1, MAX_QUANTITY);
      else cart.lines.push({ item, quantity: 1 });
      session.set(CART_KEY, cart);
    }
    await session.commit();
    this.adapterHost.httpAdapter.redirect(res, 302, '/cart');
  }

  @Post('clear')
  @Redirect('/cart', 302)
  clear(@Session() session: Session): void {
    session.remove(CART_KEY);
  }
}
