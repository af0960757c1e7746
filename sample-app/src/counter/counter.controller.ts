import { Controller, Get } from '@nestjs/common';
import { Session } from 'nest-session-state';
import { incrementCounter } from './counter.js';

@Controller('counter')
export class CounterController {
  /** `{ "count": n }`, one more on each request of the same session (load tests, multi-instance checks). */
  @Get()
  count(@Session() session: Session): { count: number } {
    return { count: incrementCounter(session) };
  }
}
