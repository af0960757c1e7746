import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import {
  GatewaySessionNotConnectedError,
  Item,
  ItemKey,
  Items,
  ItemsAccessor,
  RequestItems,
  Session,
  SessionAccessor,
  SessionNotConfiguredError,
  SessionRequiresHttpError,
  TempData,
  TempDataAccessor,
} from 'nest-session-state';
import { startItemsApp } from './support/items-test.app.js';
import { failureOf, nonHttpContext, paramFactoryOf } from './support/non-http-context.js';
import { startUnconfiguredApp } from './support/unconfigured.app.js';

const NOT_CONFIGURED = 'has not been configured for this application or request';

describe('errors: items, session and TempData outside a request', () => {
  let app: INestApplication;

  beforeAll(async () => {
    ({ app } = await startItemsApp());
  });
  afterAll(() => app.close());

  it.each([
    ['ItemsAccessor.current', 'Request items', () => app.get(ItemsAccessor).current],
    ['SessionAccessor.session', 'Session', () => app.get(SessionAccessor).session],
    ['SessionAccessor.load()', 'Session', () => app.get(SessionAccessor).load()],
    ['TempDataAccessor.current', 'TempData', () => app.get(TempDataAccessor).current],
    ['TempDataAccessor.load()', 'TempData', () => app.get(TempDataAccessor).load()],
  ])('%s outside a request throws SessionNotConfiguredError with the fix', async (_name, what, use) => {
    const error = await failureOf(use);
    expect(error).toBeInstanceOf(SessionNotConfiguredError);
    const { message } = error as Error;
    expect(message).toContain(`${what} ${NOT_CONFIGURED}`);
    expect(message).toContain('SessionModule.forRoot()');
    expect(message).toContain('while an HTTP request is being handled');
  });

  it('the accessor works again once a request is being handled (the error is about the call site, not the app)', async () => {
    // startItemsApp's middleware uses ItemsAccessor.current: a 200 shows the same accessor works inside a request.
    await request(await app.getUrl())
      .get('/items/pipeline')
      .expect(200);
  });
});

describe('errors: decorators in an app without SessionModule', () => {
  let app: INestApplication;
  let url: string;

  beforeAll(async () => {
    ({ app, url } = await startUnconfiguredApp());
  });
  afterAll(() => app.close());

  it.each([
    ['/items', 'Request items', '@Items()'],
    ['/item', 'Request items', '@Item()'],
    ['/session', 'Session', '@Session()'],
    ['/temp-data', 'TempData', '@TempData()'],
  ])(
    'GET %s fails with SessionNotConfiguredError: "%s has not been configured", naming %s',
    async (path, subject, what) => {
      const res = await request(url).get(path).expect(500);
      expect(res.body.name).toBe('SessionNotConfiguredError');
      expect(res.body.message).toContain(`${subject} ${NOT_CONFIGURED}`);
      expect(res.body.message).toContain(`(used by ${what})`);
      expect(res.body.message).toContain('import SessionModule.forRoot()');
    },
  );
});

describe('errors: decorators in a WebSocket gateway or microservice handler (no HTTP request)', () => {
  const decorators: [string, string, ParameterDecorator][] = [
    ['@Items()', '@Items()', Items()],
    ["@Item('isVerified')", '@Item()', Item('isVerified')],
    ['@Item(ItemKey)', '@Item()', Item(new ItemKey<boolean>('isVerified'))],
    ['@Session()', '@Session()', Session()],
    ['@TempData()', '@TempData()', TempData()],
    ["@TempData('Message')", '@TempData()', TempData('Message')],
  ];

  describe.each(['ws', 'rpc'] as const)('in a "%s" context', (type) => {
    // In a gateway, @Session() is the client's snapshot (test/websocket); the rest need HTTP there too.
    it.each(type === 'ws' ? decorators.filter(([, what]) => what !== '@Session()') : decorators)(
      '%s throws SessionRequiresHttpError: session needs HTTP, keep per-connection state on the socket',
      async (_label, what, decorator) => {
        const { factory, data } = paramFactoryOf(decorator);
        const error = await failureOf(() => factory(data, nonHttpContext(type)));
        expect(error).toBeInstanceOf(SessionRequiresHttpError);
        const { message } = error as Error;
        expect(message).toContain(`${what} needs an HTTP request`);
        expect(message).toContain(`"${type}" context`);
        expect(message).toContain('keep per-connection state on the socket');
      },
    );
  });

  it('in a "ws" context, @TempData() says TempData rides on HTTP responses and points at GatewaySessions', async () => {
    const { factory, data } = paramFactoryOf(TempData());
    const { message } = (await failureOf(() => factory(data, nonHttpContext('ws')))) as Error;
    expect(message).toContain('TempData rides on HTTP responses');
    expect(message).toContain('GatewaySessions');
  });

  it('@Session() in a "ws" context for a client GatewaySessions never loaded: GatewaySessionNotConnectedError with the fix', async () => {
    const { factory, data } = paramFactoryOf(Session());
    const error = await failureOf(() => factory(data, nonHttpContext('ws')));
    expect(error).toBeInstanceOf(GatewaySessionNotConnectedError);
    expect((error as Error).message).toContain('@Session() found no handshake for this WebSocket client');
    expect((error as Error).message).toContain('gatewaySessions.connect(client, request)');
  });

  it('control: the same factories succeed with an HTTP context whose request carries the module state', async () => {
    // Guards against the rows above passing for the wrong reason (e.g. a factory that always throws).
    const { ExecutionContextHost } = await import('@nestjs/core/helpers/execution-context-host.js');
    const bag = new RequestItems().set('isVerified', true);
    const req = { headers: {}, [Symbol.for('nest-session-state.request-state')]: { items: bag } };
    const http = new ExecutionContextHost([req, {}]);
    http.setType('http');
    const items = paramFactoryOf(Items());
    expect(items.factory(items.data, http)).toBe(bag);
    const item = paramFactoryOf(Item('isVerified'));
    expect(item.factory(item.data, http)).toBe(true);
    // Without the state the module's middleware attaches, the decorator says the module is missing.
    const bare = new ExecutionContextHost([{ headers: {} }, {}]);
    bare.setType('http');
    expect(await failureOf(() => items.factory(items.data, bare))).toBeInstanceOf(SessionNotConfiguredError);
  });
});
