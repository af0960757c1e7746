import { Body, Controller, Get, HttpCode, Module, Param, Post, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  Session,
  SessionModule,
  TempData,
  type SessionModuleOptions,
  type TempDataDictionary,
} from 'nest-session-state';
import { CaptureLogger } from '../../support/capture-logger.js';
import { createPlatformApp } from '../../support/platform/test-platform.js';

export { SESSION_COOKIE, TEMP_DATA_COOKIE } from './names.js';

/** Header block the security test server accepts: room for the 100 KB Cookie header of the tamper matrix. */
export const SECURITY_MAX_HEADER_SIZE = 128 * 1024;

/** What `GET /sec/state` answers: every session value (as a string) and every TempData value (peeked). */
export interface StateBody {
  available: boolean;
  session: Record<string, string | null>;
  tempData: Record<string, unknown>;
}

/** The routes the security suites drive: state in and out, login, and values of a chosen size. */
@Controller('sec')
export class SecurityTestController {
  /** Reads both session and TempData without changing either (TempData is peeked, not read). */
  @Get('state')
  state(@Session() session: Session, @TempData() tempData: TempDataDictionary): StateBody {
    return {
      available: session.isAvailable,
      session: Object.fromEntries(session.keys.map((key) => [key, session.getString(key) ?? null])),
      tempData: Object.fromEntries(tempData.keys().map((key) => [key, tempData.peek(key)])),
    };
  }

  /** Reads the session only (TempData untouched). */
  @Get('session')
  session(@Session() session: Session) {
    return Object.fromEntries(session.keys.map((key) => [key, session.getString(key) ?? null]));
  }

  /** Stores string values in the session and/or TempData. */
  @Post('put')
  @HttpCode(200)
  put(
    @Session() session: Session,
    @TempData() tempData: TempDataDictionary,
    @Body() body: { session?: Record<string, string>; tempData?: Record<string, unknown> },
  ) {
    for (const [key, value] of Object.entries(body.session ?? {})) session.setString(key, value);
    for (const [key, value] of Object.entries(body.tempData ?? {})) tempData.set(key, value);
    return { ok: true };
  }

  /** Reads every TempData value (so TempData is emptied at the end of the request). */
  @Get('take')
  take(@TempData() tempData: TempDataDictionary) {
    return Object.fromEntries(tempData.entries());
  }

  /** Logout: the session's data and cookie are deleted. */
  @Post('logout')
  @HttpCode(200)
  logout(@Session() session: Session) {
    session.abandon();
    return { ok: true };
  }

  /** Login: a new session key (the defence against fixation), then the user. */
  @Post('login')
  @HttpCode(200)
  login(@Session() session: Session, @Body() body: { user: string }) {
    session.regenerate();
    session.setString('user', body.user);
    return { user: body.user };
  }

  /** Stores `size` bytes under `key`; answers the error instead of failing the request. */
  @Post('value/:key')
  @HttpCode(200)
  value(@Session() session: Session, @Param('key') key: string, @Body() body: { size: number }) {
    try {
      session.setString(key, 'x'.repeat(body.size));
      return { error: null, keys: session.keys };
    } catch (error) {
      return { error: (error as Error).name, message: (error as Error).message, keys: session.keys };
    }
  }
}

/** Express with a header limit large enough for a 100 KB Cookie header (Node's default is 16 KiB). */
export interface SecurityApp {
  app: INestApplication;
  url: string;
  /** Every line the app logged, at every level (debug included). */
  logger: CaptureLogger;
}

/**
 * Boots a Nest app with SessionModule and {@link SecurityTestController} on a free port, logging every
 * level into a {@link CaptureLogger}. `trustProxy` is Express's `trust proxy` setting (Fastify's `trustProxy`), passed as is.
 */
export async function startSecurityApp(
  options: SessionModuleOptions = {},
  extra: { trustProxy?: boolean | string; logger?: CaptureLogger } = {},
): Promise<SecurityApp> {
  @Module({ imports: [SessionModule.forRoot(options)], controllers: [SecurityTestController] })
  class SecurityTestModule {}
  const logger = extra.logger ?? new CaptureLogger();
  const ref = await Test.createTestingModule({ imports: [SecurityTestModule] })
    .setLogger(logger)
    .compile();
  const app = createPlatformApp(ref, {
    logger,
    maxHeaderSize: SECURITY_MAX_HEADER_SIZE,
    trustProxy: extra.trustProxy,
  });
  await app.listen(0, '127.0.0.1');
  return { app, url: await app.getUrl(), logger };
}
