import 'reflect-metadata';
import { Controller, Get, Redirect, Res, type INestApplication } from '@nestjs/common';
import { TempData, type TempDataDictionary } from 'nest-session-state';
import { Browser } from './support/browser.js';
import { startTempDataApp } from './support/temp-data-test.app.js';
import {
  rawResponse,
  redirectTo,
  sendBody,
  type PlatformResponse,
} from '../support/platform/test-platform.js';

/**
 * ASP.NET keeps all TempData when the result is a redirect (IKeepTempDataResult): a value read in a
 * request that redirects is still there on the page the redirect leads to. Here "a redirect" is what
 * the response says: a 3xx status with a Location header, however the handler produced it.
 */
@Controller('read-then')
class ReadThenController {
  @Get('redirect-decorator')
  @Redirect('/customers', 302)
  decorator(@TempData() tempData: TempDataDictionary) {
    return { read: tempData.get('Message') };
  }

  @Get('res-redirect')
  resRedirect(@TempData() tempData: TempDataDictionary, @Res() res: PlatformResponse) {
    tempData.get('Message');
    redirectTo(res, '/customers');
  }

  @Get('status-location')
  statusLocation(@TempData() tempData: TempDataDictionary, @Res() res: PlatformResponse) {
    tempData.get('Message');
    sendBody(res, '', 303, { Location: '/customers' });
  }

  @Get('write-head')
  writeHead(@TempData() tempData: TempDataDictionary, @Res() res: PlatformResponse) {
    tempData.get('Message');
    rawResponse(res).writeHead(307, { Location: '/customers' }).end();
  }

  /** Removing is not reading: a removed value stays removed across a redirect. */
  @Get('remove-and-redirect')
  @Redirect('/customers', 302)
  removeAndRedirect(@TempData() tempData: TempDataDictionary) {
    tempData.remove('Message');
  }

  /** Not a redirect: a read consumes the value as usual. */
  @Get('ok')
  ok(@TempData() tempData: TempDataDictionary) {
    return { read: tempData.get('Message') ?? null };
  }

  /** A 3xx without Location (304 Not Modified) is not a redirect. */
  @Get('not-modified')
  notModified(@TempData() tempData: TempDataDictionary, @Res() res: PlatformResponse) {
    tempData.get('Message');
    sendBody(res, undefined, 304);
  }
}

describe.each(['cookie', 'session'] as const)('a redirect keeps TempData (%s provider)', (provider) => {
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    ({ app, url } = await startTempDataApp(
      { tempData: { provider } },
      { controllers: [ReadThenController] },
    ));
  });
  afterAll(() => app.close());

  async function browserWithMessage(): Promise<Browser> {
    const browser = new Browser(url);
    await browser.run({ op: 'set', key: 'Message', value: 'Customer Ada added' });
    return browser;
  }

  it.each([
    ['@Redirect', '/read-then/redirect-decorator', 302],
    ['res.redirect()', '/read-then/res-redirect', 302],
    ['a 3xx status with Location', '/read-then/status-location', 303],
    ['writeHead(307, { Location })', '/read-then/write-head', 307],
  ])('read, then %s: the page the redirect leads to still has the value', async (_how, path, status) => {
    const browser = await browserWithMessage();
    const redirect = await browser.get(path);
    expect(redirect.status).toBe(status);
    expect(redirect.headers.location).toBe('/customers');
    expect((await browser.get('/customers')).body).toEqual({ message: 'Customer Ada added' });
    expect((await browser.get('/customers')).body).toEqual({ message: null });
  });

  it('a value removed before a redirect stays removed', async () => {
    const browser = await browserWithMessage();
    expect((await browser.get('/read-then/remove-and-redirect')).status).toBe(302);
    expect((await browser.get('/customers')).body).toEqual({ message: null });
  });

  it('without a redirect a read consumes the value (a 200, a 304 without Location)', async () => {
    const browser = await browserWithMessage();
    expect((await browser.get('/read-then/ok')).body).toEqual({ read: 'Customer Ada added' });
    expect((await browser.get('/customers')).body).toEqual({ message: null });
    const again = await browserWithMessage();
    expect((await again.get('/read-then/not-modified')).status).toBe(304);
    expect((await again.get('/customers')).body).toEqual({ message: null });
  });
});
