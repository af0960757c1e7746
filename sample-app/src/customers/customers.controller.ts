import { Body, Controller, Get, Post, Redirect, Render, UseFilters } from '@nestjs/common';
import { Session, TempData } from 'nest-session-state';
import { page, type PageKey } from '../layout/page.js';
import { CustomersService, MAX_CUSTOMERS } from './customers.service.js';
import { SessionErrorPageFilter } from '../errors/session-error-page.filter.js';

/** The TempData key of the seed's Customers pages. */
export const MESSAGE_KEY = 'Message';
const ERROR_KEY = 'CreateError';
const NAME_KEY = 'CreateName';
export const MAX_NAME_LENGTH = 100;

/**
 * Where the form's optional `then` field sends the browser after saving (default: the index page, as
 * the contract says). A fixed map, so the field cannot redirect anywhere else.
 */
const AFTER_CREATE: Record<string, string> = {
  index: '/customers',
  peek: '/customers/peek',
  keep: '/customers/keep',
};

/**
 * The seed's TempData sample: Create stores a customer and a message, then redirects; Index reads the
 * message (gone on the next request), IndexPeek peeks at it and IndexKeep reads and keeps it (both stay).
 */
@UseFilters(SessionErrorPageFilter)
@Controller('customers')
export class CustomersController {
  constructor(private readonly customers: CustomersService) {}

  @Get('create')
  @Render('customers/create')
  createForm(@TempData() tempData: TempData) {
    return page('customers-create', 'Create a customer', {
      error: tempData.get<string>(ERROR_KEY),
      name: tempData.get<string>(NAME_KEY) ?? '',
      maxLength: MAX_NAME_LENGTH,
    });
  }

  /**
   * POST/redirect/GET: the message is written to TempData before the 302 leaves. The optional form field
   * `then` (`index`, `peek` or `keep`) picks the page to land on; without it, `/customers`.
   */
  @Post('create')
  @Redirect('/customers', 302)
  create(
    @Body('name') rawName: unknown,
    @Body('then') then: unknown,
    @TempData() tempData: TempData,
    @Session() session: Session,
  ): { url: string } | undefined {
    const name = typeof rawName === 'string' ? rawName.trim() : '';
    if (name.length === 0 || name.length > MAX_NAME_LENGTH) {
      tempData.set(ERROR_KEY, `Enter a name of 1 to ${MAX_NAME_LENGTH} characters.`);
      tempData.set(NAME_KEY, typeof rawName === 'string' ? rawName.slice(0, MAX_NAME_LENGTH) : '');
      return { url: '/customers/create' };
    }
    if (!this.customers.add(session, name)) {
      tempData.set(ERROR_KEY, `This sample keeps at most ${MAX_CUSTOMERS} customers per visitor.`);
      tempData.set(NAME_KEY, name);
      return { url: '/customers/create' };
    }
    tempData.set(MESSAGE_KEY, `Customer ${name} added`);
    const target =
      typeof then === 'string' && Object.hasOwn(AFTER_CREATE, then) ? AFTER_CREATE[then] : undefined;
    return target && target !== '/customers' ? { url: target } : undefined;
  }

  /** Reads the message: it is deleted at the end of this request. */
  @Get()
  @Render('customers/index')
  index(@TempData(MESSAGE_KEY) message: string | undefined, @Session() session: Session) {
    return this.model(session, 'customers', 'Customers', message, {
      how: 'TempData.get("Message")',
      explanation: 'Reading the message marks it for deletion: reload this page and it is gone.',
    });
  }

  /** Peeks at the message: it stays for the next request. */
  @Get('peek')
  @Render('customers/index')
  peek(@TempData() tempData: TempData, @Session() session: Session) {
    return this.model(session, 'customers-peek', 'Customers (Peek)', tempData.peek<string>(MESSAGE_KEY), {
      how: 'TempData.peek("Message")',
      explanation: 'Peek reads without marking the message for deletion: it is still there after a reload.',
    });
  }

  /** Reads the message, then keeps it: it stays for the next request. */
  @Get('keep')
  @Render('customers/index')
  keep(@TempData() tempData: TempData, @Session() session: Session) {
    const message = tempData.get<string>(MESSAGE_KEY);
    tempData.keep(MESSAGE_KEY);
    return this.model(session, 'customers-keep', 'Customers (Keep)', message, {
      how: 'TempData.get("Message") then TempData.keep("Message")',
      explanation: 'Keep retains the message although it was read: it is still there after a reload.',
    });
  }

  private model(
    session: Session,
    key: PageKey,
    title: string,
    message: string | undefined,
    about: { how: string; explanation: string },
  ) {
    return page(key, title, {
      message,
      ...about,
      customers: this.customers.list(session),
    });
  }
}
