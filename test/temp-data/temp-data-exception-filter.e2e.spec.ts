import {
  Catch,
  Controller,
  Get,
  Module,
  Post,
  UseFilters,
  type ArgumentsHost,
  type ExceptionFilter,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { SessionModule, TempData, TempDataAccessor, type TempDataDictionary } from 'nest-session-state';
import { CookieJar } from '../support/cookie-jar.js';
import { createPlatformApp, redirectTo } from '../support/platform/test-platform.js';

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

describe.each(['cookie', 'session'] as const)('TempData and exception filters (%s provider)', (provider) => {
  it("a failed handler's TempData changes are rolled back, while an exception filter's are saved", async () => {
    @Module({ imports: [SessionModule.forRoot({ tempData: { provider } })], controllers: [FormController] })
    class AppModule {}
    const app = createPlatformApp(await Test.createTestingModule({ imports: [AppModule] }).compile(), {
      logger: false,
    });
    await app.listen(0, '127.0.0.1');
    const url = await app.getUrl();
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
