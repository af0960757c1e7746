import { Controller, Get } from '@nestjs/common';
import { Session } from 'nest-session-state';

export const COUNTER_KEY = 'counter';

@Controller('counter')
export class CounterController {
  /** `{ "count": n }`, one more on each request of the same session (load tests, multi-instance checks). */
  @Get()
  count(@Session() session: Session): { count: number } {
    const count = (session.getInt32(COUNTER_KEY) ?? 0) + 1;
    session.setInt32(COUNTER_KEY, count);
    return { count };
  }
}
