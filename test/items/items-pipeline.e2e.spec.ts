import http from 'node:http';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { setCookies } from '../support/cookie-jar.js';
import { httpJson } from './support/http-client.js';
import { startItemsApp, type ItemsProbeService, type Observation } from './support/items-test.app.js';

const STAGES_BEFORE_HANDLER = ['middleware', 'guard', 'interceptor', 'pipe'];

describe('request items over HTTP: one bag for the whole pipeline', () => {
  let app: INestApplication;
  let url: string;
  let probe: ItemsProbeService;

  beforeAll(async () => {
    ({ app, url, probe } = await startItemsApp());
  });
  afterAll(() => app.close());

  it('an app middleware sets isVerified and a typed key; guard, interceptor, pipe, handler, service all see them', async () => {
    const res = await request(url).get('/items/pipeline?q=hello').set('x-count', '7').expect(200);
    const { observations, params, service, sameBag, afterHandler, q } = res.body;
    expect(q).toBe('hello');
    expect((observations as Observation[]).map((o) => o.stage)).toEqual([
      ...STAGES_BEFORE_HANDLER,
      'handler',
    ]);
    for (const o of observations as Observation[]) {
      expect(o).toMatchObject({ isVerified: true, count: 7 });
    }
    expect(params).toEqual({ isVerified: true, count: 7, guardStamp: 'guard saw isVerified=true' });
    expect(service).toMatchObject({ stage: 'service', isVerified: true, count: 7 });
    expect(afterHandler).toMatchObject({ stage: 'interceptor-after', isVerified: true, count: 7 });
    expect(sameBag).toBe(true);
  });

  it('values follow the request: another request with other headers sees its own values', async () => {
    const res = await request(url)
      .get('/items/pipeline')
      .set('x-verified', 'false')
      .set('x-count', '-3')
      .expect(200);
    expect(res.body.params).toEqual({
      isVerified: false,
      count: -3,
      guardStamp: 'guard saw isVerified=false',
    });
    expect(res.body.service).toMatchObject({ isVerified: false, count: -3 });
  });

  it('a value set by the guard is seen by the interceptor, the pipe, the handler and the service', async () => {
    const res = await request(url).get('/items/pipeline').expect(200);
    const byStage = Object.fromEntries(
      (res.body.observations as Observation[]).map((o) => [o.stage, o.guardStamp ?? null]),
    );
    expect(byStage).toEqual({
      middleware: null,
      guard: null,
      interceptor: 'guard saw isVerified=true',
      pipe: 'guard saw isVerified=true',
      handler: 'guard saw isVerified=true',
    });
    expect(res.body.params.guardStamp).toBe('guard saw isVerified=true');
    expect(res.body.service.guardStamp).toBe('guard saw isVerified=true');
  });

  it('an exception filter sees the same bag, including what every earlier stage wrote', async () => {
    const res = await request(url).get('/items/pipeline/throw?q=x').set('x-count', '9').expect(418);
    const observations = res.body.observations as Observation[];
    expect(observations.map((o) => o.stage)).toEqual([...STAGES_BEFORE_HANDLER, 'handler', 'filter']);
    expect(observations.at(-1)).toEqual({
      stage: 'filter',
      isVerified: true,
      count: 9,
      guardStamp: 'guard saw isVerified=true',
    });
  });

  it('using items alone writes no cookie', async () => {
    const res = await request(url).get('/items/pipeline').expect(200);
    expect(setCookies(res)).toEqual([]);
  });

  it('after the request the bag is gone: a later request, even on the same keep-alive connection, sees nothing', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await httpJson<{ port: number; left: string }>(url, '/items/leave/secret-1', {
        method: 'POST',
        agent,
      });
      expect(first).toMatchObject({ status: 200, body: { left: 'secret-1' } });
      const later = await httpJson<{ port: number; left: unknown; keys: string[] }>(url, '/items/left', {
        agent,
      });
      expect(later.body.port).toBe(first.body.port); // same socket
      expect(later.body).toMatchObject({ left: null, symbolLeft: null, fromService: false });
      // Only what this request's own middleware and guard put there.
      expect(later.body.keys.sort()).toEqual([
        'ItemKey(count)',
        'ItemKey(guardStamp)',
        'ItemKey(observations)',
        'isVerified',
      ]);
    } finally {
      agent.destroy();
    }
  });

  it('after the request nothing keeps the bag alive (collected by the garbage collector)', async () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    probe.weakBags.length = 0;
    for (let i = 0; i < 5; i++) await request(url).post(`/items/leave/value-${i}`).expect(200);
    expect(probe.weakBags).toHaveLength(5);
    let alive = 5;
    for (let attempt = 0; attempt < 20 && alive > 0; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      gc();
      alive = probe.weakBags.filter((ref) => ref.deref() !== undefined).length;
    }
    expect(alive).toBe(0);
  });

  it('string, symbol and ItemKey keys are distinct: "x", Symbol("x") and ItemKey("x") never collide', async () => {
    const res = await request(url).get('/items/keys').expect(200);
    expect(res.body).toEqual({
      string: 'string key',
      symbol: 'symbol key',
      itemKey: 'ItemKey',
      otherItemKey: 'another ItemKey with the same description',
      lookalike: 'string that looks like the ItemKey',
      globalSymbol: null,
      freshItemKey: false,
      isVerifiedByItemKey: false,
      isVerifiedByString: true,
    });
  });

  it('@Item() takes string, symbol and ItemKey keys and keeps them apart (values set by the guard)', async () => {
    const res = await request(url).get('/items/decorated-keys').set('x-set-keys', 'yes').expect(200);
    expect(res.body).toEqual({
      stringX: 'string key',
      symbolX: 'symbol key',
      itemKeyX: 'ItemKey',
      otherItemKeyX: null,
      otherSymbolX: null,
    });
  });
});
