import {
  Catch,
  Controller,
  Get,
  Module,
  type ArgumentsHost,
  type ExceptionFilter,
  type INestApplication,
} from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import {
  Item,
  Items,
  Session,
  TempData,
  type RequestItems,
  type TempDataDictionary,
} from 'nest-session-state';
import { createPlatformApp, sendBody } from '../../support/platform/test-platform.js';

/** Reports any error as JSON, so tests can read the name and message the library threw. */
@Catch()
export class ReportErrorFilter implements ExceptionFilter {
  catch(error: Error, host: ArgumentsHost): void {
    sendBody(host.switchToHttp().getResponse(), { name: error.name, message: error.message }, 500);
  }
}

@Controller()
export class UnconfiguredController {
  @Get('items')
  items(@Items() items: RequestItems) {
    return { size: items.size };
  }

  @Get('item')
  item(@Item('isVerified') isVerified: unknown) {
    return { isVerified };
  }

  @Get('session')
  session(@Session() session: Session) {
    return { id: session.id };
  }

  @Get('temp-data')
  tempData(@TempData() tempData: TempDataDictionary) {
    return { keys: tempData.keys() };
  }
}

/** An app that uses the decorators but never imports SessionModule. */
export async function startUnconfiguredApp(): Promise<{ app: INestApplication; url: string }> {
  @Module({
    controllers: [UnconfiguredController],
    providers: [{ provide: APP_FILTER, useClass: ReportErrorFilter }],
  })
  class UnconfiguredModule {}
  const ref = await Test.createTestingModule({ imports: [UnconfiguredModule] }).compile();
  const app = createPlatformApp(ref, { logger: false });
  await app.listen(0, '127.0.0.1');
  return { app, url: await app.getUrl() };
}
