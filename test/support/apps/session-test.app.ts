import {
  BadRequestException,
  Body,
  Controller,
  Get,
  Header,
  HttpCode,
  Module,
  Param,
  Post,
  Redirect,
  Res,
  type DynamicModule,
  type INestApplication,
  type LoggerService,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  Session,
  SessionAccessor,
  SessionModule,
  TempData,
  type SessionModuleOptions,
  type TempDataDictionary,
} from 'nest-session-state';
import {
  createPlatformApp,
  rawResponse,
  redirectTo,
  sendBody,
  type PlatformResponse,
} from '../platform/test-platform.js';

/** Routes that exercise the session the way apps do; shared by the session e2e suites. */
@Controller()
export class SessionTestController {
  constructor(private readonly sessions: SessionAccessor) {}

  @Get('untouched')
  untouched() {
    return { ok: true };
  }

  @Get('counter')
  counter(@Session() session: Session) {
    const count = (session.getInt32('count') ?? 0) + 1;
    session.setInt32('count', count);
    return { count };
  }

  /** `counter` on a route whose response the app marks cacheable, with directives of its own. */
  @Get('cacheable-counter')
  @Header('Cache-Control', 'public, max-age=60, no-transform')
  cacheableCounter(@Session() session: Session) {
    return this.counter(session);
  }

  @Get('slow-counter')
  async slowCounter(@Session() session: Session) {
    const count = (session.getInt32('count') ?? 0) + 1;
    await new Promise((resolve) => setTimeout(resolve, 200));
    session.setInt32('count', count);
    return { count };
  }

  @Get('read')
  read(@Session() session: Session) {
    return {
      available: session.isAvailable,
      keys: session.keys,
      count: session.getInt32('count') ?? null,
      name: session.getString('name') ?? null,
    };
  }

  @Get('id')
  id(@Session() session: Session) {
    return { id: session.id };
  }

  @Post('set/:key')
  @HttpCode(200)
  set(@Session() session: Session, @Param('key') key: string, @Body() body: { value?: string }) {
    session.setString(key, body?.value ?? key);
    return { keys: session.keys };
  }

  /** Sets `key` and removes it again in one request: it must not be stored. */
  @Post('set-then-remove/:key')
  @HttpCode(200)
  setThenRemove(@Session() session: Session, @Param('key') key: string) {
    session.setString(key, 'short-lived');
    session.remove(key);
    return { keys: session.keys };
  }

  @Get('keys')
  keys(@Session() session: Session) {
    return Object.fromEntries(session.keys.map((k) => [k, session.getString(k)]));
  }

  @Post('clear')
  @HttpCode(200)
  clear(@Session() session: Session) {
    session.clear();
    return { keys: session.keys };
  }

  @Post('regenerate')
  @HttpCode(200)
  regenerate(@Session() session: Session) {
    session.regenerate();
    return { keys: session.keys };
  }

  @Post('abandon')
  @HttpCode(200)
  abandon(@Session() session: Session) {
    session.abandon();
    return { ok: true };
  }

  @Post('redirect')
  @Redirect('/read', 302)
  redirect(@Session() session: Session) {
    session.setString('name', 'redirected');
  }

  @Post('res-redirect')
  resRedirect(@Session() session: Session, @Res() res: PlatformResponse) {
    session.setString('name', 'res-redirected');
    redirectTo(res, '/read');
  }

  @Post('res-send')
  resSend(@Session() session: Session, @Res() res: PlatformResponse) {
    session.setString('name', 'res-sent');
    sendBody(res, 'sent', 201);
  }

  @Post('throw')
  throws(@Session() session: Session) {
    session.setString('name', 'thrown');
    throw new BadRequestException('handler failed');
  }

  @Post('stream')
  stream(@Session() session: Session, @Res() reply: PlatformResponse) {
    const res = rawResponse(reply);
    res.write('started;'); // held until the commit: the headers can still change
    try {
      session.setString('late', 'value');
      res.end('no error');
    } catch (error) {
      res.end((error as Error).name);
    }
  }

  /** What the change after the commit raised, in the last POST /after-end. */
  private lateChange: Promise<string> = Promise.resolve('none');

  @Post('after-end')
  afterEnd(@Session() session: Session, @Res() res: PlatformResponse) {
    session.setString('before', 'kept');
    sendBody(res, 'sent', 201); // the commit runs a microtask later, before the bytes leave
    session.setString('same-turn', 'kept'); // still in this turn: part of that commit
    this.lateChange = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      try {
        session.setString('after', 'lost?');
        return 'no error';
      } catch (error) {
        return (error as Error).name;
      }
    });
  }

  @Get('late-change')
  async lateChangeResult() {
    return { error: await this.lateChange };
  }

  @Post('stream-flushed')
  async streamFlushed(@Res() reply: PlatformResponse) {
    const res = rawResponse(reply);
    res.flushHeaders(); // the headers are out before the session is used: a new session's cookie can no longer be sent
    res.write('started;');
    const session = await this.sessions.load();
    try {
      session.setString('late', 'value');
      res.end('no error');
    } catch (error) {
      res.end((error as Error).name);
    }
  }

  @Post('explicit-commit')
  @HttpCode(200)
  async explicitCommit(@Session() session: Session) {
    session.setString('name', 'explicit');
    try {
      await session.commit();
      return { committed: true };
    } catch (error) {
      return { committed: false, error: (error as Error).name };
    }
  }

  @Get('service')
  async fromService() {
    const session = await this.sessions.load();
    return { count: session.getInt32('count') ?? null };
  }

  @Post('bad/:kind')
  @HttpCode(200)
  bad(@Session() session: Session, @Param('kind') kind: string) {
    const values: Record<string, unknown> = { fn: () => 1, big: BigInt(1), huge: 'x'.repeat(300 * 1024) };
    if (kind === 'cycle') {
      const a: Record<string, unknown> = {};
      a.self = a;
      values.cycle = a;
    }
    try {
      session.set(kind, values[kind]);
      return { error: null };
    } catch (error) {
      return { error: (error as Error).name, message: (error as Error).message };
    }
  }

  @Post('temp/:key')
  @Redirect('/temp', 302)
  setTemp(
    @TempData() tempData: TempDataDictionary,
    @Param('key') key: string,
    @Body() body: { value?: string },
  ) {
    tempData.set(key, body?.value ?? key);
  }

  @Get('temp')
  getTemp(@TempData('Message') message: unknown) {
    return { message: message ?? null };
  }
}

/** Boots a Nest app with SessionModule and the test controller on a free port. */
export async function startSessionApp(
  options: SessionModuleOptions = {},
  extra: {
    controllers?: (new (...args: never[]) => unknown)[];
    trustProxy?: boolean;
    logger?: LoggerService;
    module?: DynamicModule;
    imports?: (new (...args: never[]) => unknown)[];
  } = {},
): Promise<{ app: INestApplication; url: string }> {
  @Module({
    imports: [extra.module ?? SessionModule.forRoot(options), ...(extra.imports ?? [])],
    controllers: [SessionTestController, ...(extra.controllers ?? [])],
  })
  class TestAppModule {}
  const builder = Test.createTestingModule({ imports: [TestAppModule] });
  if (extra.logger) builder.setLogger(extra.logger);
  const ref = await builder.compile();
  const app = createPlatformApp(ref, {
    logger: extra.logger ?? (process.env.TEST_LOGS ? ['error', 'warn', 'log', 'debug'] : false),
    trustProxy: extra.trustProxy,
  });
  await app.listen(0, '127.0.0.1');
  return { app, url: await app.getUrl() };
}
