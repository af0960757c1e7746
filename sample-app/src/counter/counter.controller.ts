import { Controller, Get, UseFilters } from '@nestjs/common';
import { Session } from 'nest-session-state';
import { incrementCounter } from './counter.js';
import { SessionErrorPageFilter } from '../errors/session-error-page.filter.js';

@UseFilters(SessionErrorPageFilter)
@Controller('counter')
export class CounterController {
  /** `{ "count": n }`, one more on each request of the same session (load tests, multi-instance checks). */
  @Get()
  count(@Session() session: Session): { count: number } {
    return { count: incrementCounter(session) };
  }
}
