import 'reflect-metadata';
import {
  Controller,
  Get,
  Param,
  Injectable,
  Res,
  UseInterceptors,
  type CallHandler,
  type ExecutionContext,
  type INestApplication,
  type NestInterceptor,
} from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { mergeMap, type Observable } from 'rxjs';
import {
  ResponseStartedError,
  Session,
  SessionStateError,
  TempData,
  TempDataAccessor,
  TempDataResponseStartedError,
  type TempDataDictionary,
} from 'nest-session-state';
import { Browser } from './support/browser.js';
import { RecordingLogger, startTempDataApp } from './support/temp-data-test.app.js';
import { sendBody, type PlatformResponse } from '../support/platform/test-platform.js';

/** Sets TempData `Outer` after the handler returned, on routes under /outer and /scoped. */
@Injectable()
class OuterFlashInterceptor implements NestInterceptor {
  constructor(private readonly tempData: TempDataAccessor) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const path = context.switchToHttp().getRequest<{ url: string }>().url.split('?')[0];
    if (!path.startsWith('/outer') && !path.startsWith('/scoped')) return next.handle();
    return next.handle().pipe(
      mergeMap(async (value: unknown) => {
        (await this.tempData.load()).set('Outer', `set after ${path}`);
        return value;
      }),
    );
  }
}

/** Handlers with every combination of decorators, under the global interceptor. */
@Controller('outer')
class OuterController {
  @Get('with-temp-data')
  withTempData(@TempData() _tempData: TempDataDictionary) {
    return { ok: true };
  }

  @Get('with-temp-data-key')
  withTempDataKey(@TempData('Other') other: unknown) {
    return { other: other ?? null };
  }

  @Get('with-session')
  withSession(@Session() session: Session) {
    return { keys: session.keys.length };
  }

  @Get('plain')
  plain() {
    return { ok: true };
  }
}

/** The same interceptor at controller level, outside the one @TempData() applies. */
@Controller('scoped')
@UseInterceptors(OuterFlashInterceptor)
class ScopedController {
  @Get('with-temp-data')
  withTempData(@TempData() _tempData: TempDataDictionary) {
    return { ok: true };
  }
}

/** Changes made after TempData was saved; the outcome of the last one is kept for `GET /late/outcome`. */
@Controller('late')
class LateController {
  private outcome: Promise<unknown> = Promise.resolve(null);

  @Get(':op')
  late(@Param('op') op: string, @TempData() tempData: TempDataDictionary, @Res() res: PlatformResponse) {
    tempData.peek('Message'); // loads
    sendBody(res, 'sent');
    if (op === 'same-turn') {
      tempData.set('SameTurn', 'kept'); // before the save, which runs a microtask later
      return;
    }
    this.outcome = new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      try {
        if (op === 'set') tempData.set('Late', 'lost?');
        else if (op === 'remove') tempData.remove('Message');
        else if (op === 'clear') tempData.clear();
        else if (op === 'keep') tempData.keep();
        else return { read: tempData.peek('Message') ?? null };
        return { error: null };
      } catch (error) {
        return {
          error: (error as Error).name,
          code: (error as SessionStateError).code,
          family: error instanceof ResponseStartedError && error instanceof SessionStateError,
          tempData: error instanceof TempDataResponseStartedError,
        };
      }
    });
  }

  @Get('outcome/last')
  async last() {
    return await this.outcome;
  }
}

describe.each(['cookie', 'session'] as const)(
  'TempData is saved once, at the outermost point (%s provider)',
  (provider) => {
    let app: INestApplication;
    let url: string;
    const logger = new RecordingLogger();

    beforeAll(async () => {
      ({ app, url } = await startTempDataApp(
        { tempData: { provider } },
        {
          logger,
          controllers: [OuterController, ScopedController, LateController],
          providers: [OuterFlashInterceptor, { provide: APP_INTERCEPTOR, useClass: OuterFlashInterceptor }],
        },
      ));
    });
    afterAll(() => app.close());

    describe('TempData set by an interceptor after the handler returned', () => {
      it.each([
        ['a global interceptor, handler takes @TempData()', '/outer/with-temp-data'],
        ["a global interceptor, handler takes @TempData('key')", '/outer/with-temp-data-key'],
        ['a global interceptor, handler takes @Session()', '/outer/with-session'],
        ['a global interceptor, handler takes nothing', '/outer/plain'],
        ['a controller-level interceptor, handler takes @TempData()', '/scoped/with-temp-data'],
      ])('%s: saved', async (_case, path) => {
        const browser = new Browser(url);
        expect((await browser.get(path)).status).toBe(200);
        expect(await browser.run({ op: 'get', key: 'Outer' })).toEqual([`set after ${path}`]);
        expect(await browser.run({ op: 'peek', key: 'Outer' })).toEqual([null]);
      });
    });

    describe('a change after the save', () => {
      it.each(['set', 'remove', 'clear', 'keep'])(
        '%s: throws TempDataResponseStartedError (a ResponseStartedError, like the session), logged at warn, not saved',
        async (op) => {
          const browser = new Browser(url);
          await browser.run({ op: 'set', key: 'Message', value: 'hello' });
          const before = logger.lines.length;
          expect((await browser.get(`/late/${op}`)).text).toBe('sent');
          expect((await browser.get('/late/outcome/last')).body).toEqual({
            error: 'TempDataResponseStartedError',
            code: 'TEMP_DATA_RESPONSE_STARTED',
            family: true,
            tempData: true,
          });
          const warned = logger.lines
            .slice(before)
            .filter((l) => l.level === 'warn' && /TempData can no longer be saved/.test(l.message));
          expect(warned).toHaveLength(1);
          expect(await browser.run({ op: 'peek', key: 'Message' }, { op: 'peek', key: 'Late' })).toEqual([
            'hello',
            null,
          ]);
        },
      );

      it('a read after the save still answers (and does not consume the value)', async () => {
        const browser = new Browser(url);
        await browser.run({ op: 'set', key: 'Message', value: 'hello' });
        await browser.get('/late/read');
        expect((await browser.get('/late/outcome/last')).body).toEqual({ read: 'hello' });
        expect(await browser.run({ op: 'peek', key: 'Message' })).toEqual(['hello']);
      });

      it('a change in the same turn as res.send() is still saved', async () => {
        const browser = new Browser(url);
        await browser.get('/late/same-turn');
        expect(await browser.run({ op: 'peek', key: 'SameTurn' })).toEqual(['kept']);
      });
    });
  },
);
