import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { CookieJar, findSetCookie } from '../support/cookie-jar.js';
import { startItemsApp } from './support/items-test.app.js';

describe.each([
  { provider: 'cookie' as const, cookies: ['.Nest.Session', '.Nest.TempData'] },
  { provider: 'session' as const, cookies: ['.Nest.Session'] },
])(
  'items with session and TempData ($provider TempData) in one SessionModule registration',
  ({ provider, cookies }) => {
    let app: INestApplication;
    let url: string;

    beforeAll(async () => {
      ({ app, url } = await startItemsApp({ tempData: { provider } }));
    });
    afterAll(() => app.close());

    it('one request uses all three; the next request gets the session and TempData back and fresh items', async () => {
      const jar = new CookieJar();
      const write = await request(url).post('/all').set('x-count', '1').expect(200);
      expect(write.body).toMatchObject({ isVerified: true, count: 2 });
      for (const name of cookies) expect(findSetCookie(write, name)).toBeDefined();
      jar.update(write);

      const read = await request(url).get('/all').set('Cookie', jar.header()).set('x-count', '5').expect(200);
      expect(read.body).toEqual({
        name: 'The Doctor',
        age: 73,
        message: 'Verified: true',
        messageStillThere: 'Verified: true', // peek: read in this request, so gone after it
        sameSession: true,
        isVerified: true,
        count: 5, // this request's middleware value, not the 2 the previous request stored in its bag
        sameItems: true,
      });
      jar.update(read);

      const again = await request(url).get('/all').set('Cookie', jar.header()).expect(200);
      expect(again.body).toMatchObject({ name: 'The Doctor', age: 73, message: null, count: 42 });
    });
  },
);
