import {
  Catch,
  Controller,
  Get,
  HttpCode,
  Injectable,
  Module,
  Post,
  Res,
  UseFilters,
  UseInterceptors,
  type ArgumentsHost,
  type CallHandler,
  type ExceptionFilter,
  type INestApplication,
  type NestInterceptor,
} from '@nestjs/common';
import { map, type Observable } from 'rxjs';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { SessionModule, TempData, TempDataAccessor, type TempDataDictionary } from 'nest-session-state';
import { CookieJar } from '../support/cookie-jar.js';
import {
  createPlatformApp,
  redirectTo,
  sendBody,
  type PlatformResponse,
} from '../support/platform/test-platform.js';

class ValidationFailed extends Error {}

@Catch(ValidationFailed)
class RedirectWithMessage implements ExceptionFilter {
  constructor(private readonly tempData: TempDataAccessor) {}
  async catch(error: ValidationFailed, host: ArgumentsHost) {
    (await this.tempData.load()).set('Error', error.message);
    redirectTo(host.switchToHttp().getResponse(), '/form');
  }
}

@Controller()
class FormController {
  @Post('submit')
  @UseFilters(RedirectWithMessage)
  submit(@TempData() tempData: TempDataDictionary) {
    tempData.set('Message', 'saved'); // rolled back: the handler failed
    tempData.get('Kept'); // rolled back: still there next time
    throw new ValidationFailed('name is required');
  }

  @Post('seed')
  seed(@TempData() tempData: TempDataDictionary) {
    tempData.set('Kept', 'still here');
    return {};
  }

  @Get('form')
  form(@TempData() tempData: TempDataDictionary) {
    return {
      error: tempData.get('Error') ?? null,
      message: tempData.get('Message') ?? null,
      kept: tempData.peek('Kept') ?? null,
    };
  }
}

/** An app's interceptor outside the library's: it fails after the handler returned, as a view that fails to render. */
@Injectable()
class FailAfterHandler implements NestInterceptor {
  intercept(_context: unknown, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(
      map(() => {
        throw new Error('failed after the handler returned');
      }),
    );
  }
}

@Controller('late')
@UseInterceptors(FailAfterHandler)
class LateFailureController {
  @Post('fail')
  fail(@TempData() tempData: TempDataDictionary) {
    tempData.set('Message', 'saved'); // not saved: the request failed after the handler
    return { kept: tempData.get('Kept') ?? null }; // not saved either: still there next time
  }
}

@Controller()
class ErrorPageController {
  /** An error page the app answers on purpose (a result, not a failure): what it reads is read. */
  @Post('error-page')
  @HttpCode(500)
  errorPage(@TempData() tempData: TempDataDictionary) {
    return { kept: tempData.get('Kept') ?? null };
  }

  /** The same as a web Response, whose status Nest applies after the handler returned. */
  @Post('error-response')
  errorResponse(@TempData() tempData: TempDataDictionary) {
    return new Response(JSON.stringify({ kept: tempData.get('Kept') ?? null }), {
      status: 503,
      headers: { 'content-type': 'application/json' },
    });
  }

  /** The same written through @Res() after the handler returned (callback style). */
  @Post('error-later')
  errorLater(@TempData() tempData: TempDataDictionary, @Res() res: PlatformResponse) {
    const kept = tempData.get('Kept') ?? null;
    setTimeout(() => sendBody(res, { kept }, 500), 5);
  }
}

describe.each(['cookie', 'session'] as const)('TempData and exception filters (%s provider)', (provider) => {
  /** The app with `controllers` on the platform under test, listening; its URL. */
  async function start(
    controllers: (new (...args: never[]) => unknown)[],
  ): Promise<{ app: INestApplication; url: string }> {
    @Module({ imports: [SessionModule.forRoot({ tempData: { provider } })], controllers })
    class AppModule {}
    const app = createPlatformApp(await Test.createTestingModule({ imports: [AppModule] }).compile(), {
      logger: false,
    });
    await app.listen(0, '127.0.0.1');
    return { app, url: await app.getUrl() };
  }

  it("a failed handler's TempData changes are rolled back, while an exception filter's are saved", async () => {
    const { app, url } = await start([FormController]);
    try {
      const jar = new CookieJar();
      jar.update(await request(url).post('/seed').expect(201));
      const failed = await request(url).post('/submit').set('Cookie', jar.header()).expect(302);
      expect(failed.headers.location).toBe('/form');
      jar.update(failed);
      const form = await request(url).get('/form').set('Cookie', jar.header()).expect(200);
      expect(form.body).toEqual({ error: 'name is required', message: null, kept: 'still here' });
    } finally {
      await app.close();
    }
  });

  it('a request that fails after its handler returned (a view that does not render) saves no TempData', async () => {
    const { app, url } = await start([FormController, LateFailureController, ErrorPageController]);
    try {
      const jar = new CookieJar();
      jar.update(await request(url).post('/seed').expect(201));
      const cookiesBefore = jar.header();
      const failed = await request(url).post('/late/fail').set('Cookie', jar.header()).expect(500);
      expect(String(failed.headers['set-cookie'] ?? '')).not.toMatch(/\.Nest\.TempData=/);
      jar.update(failed);
      expect(jar.header()).toBe(cookiesBefore);
      const form = await request(url).get('/form').set('Cookie', jar.header()).expect(200);
      expect(form.body).toEqual({ error: null, message: null, kept: 'still here' });

      // A 5xx the app answers on purpose is a result: the value it read is gone next time.
      for (const [route, status] of [
        ['/error-page', 500],
        ['/error-response', 503],
        ['/error-later', 500],
      ] as const) {
        jar.update(await request(url).post('/seed').expect(201));
        const page = await request(url).post(route).set('Cookie', jar.header()).expect(status);
        expect(page.body).toEqual({ kept: 'still here' });
        jar.update(page);
        const after = await request(url).get('/form').set('Cookie', jar.header()).expect(200);
        expect([route, after.body]).toEqual([route, { error: null, message: null, kept: null }]);
      }
    } finally {
      await app.close();
    }
  });
});

describe('SessionModule.forRoot() without arguments', () => {
  it('boots with the memory store and cookie TempData', async () => {
    @Module({ imports: [SessionModule.forRoot()], controllers: [FormController] })
    class BareModule {}
    const app = createPlatformApp(await Test.createTestingModule({ imports: [BareModule] }).compile(), {
      logger: false,
    });
    await app.listen(0, '127.0.0.1');
    try {
      const res = await request(await app.getUrl())
        .post('/seed')
        .expect(201);
      expect(String(res.headers['set-cookie'])).toMatch(/^\.Nest\.TempData=/);
    } finally {
      await app.close();
    }
  });
});
