import http from 'node:http';
import v8 from 'node:v8';
import vm from 'node:vm';
import { Controller, Get, Injectable, Module, Param, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  Items,
  ItemsAccessor,
  Session,
  SessionModule,
  type DistributedSession,
  type RequestItems,
} from 'nest-session-state';
import { createPlatformApp } from '../support/platform/test-platform.js';
import { lockingStores } from '../support/locking-stores.js';
import { httpJson } from './support/http-client.js';

/** Bags handed out by finished requests, to check that nothing keeps them alive. */
const weakBags: WeakRef<RequestItems>[] = [];

/** Injects the accessor, so requests run in the AsyncLocalStorage context (what retains a request). */
@Injectable()
class UsesItemsAccessor {
  constructor(readonly items: ItemsAccessor) {}
}

@Controller('store')
class StoreController {
  constructor(readonly service: UsesItemsAccessor) {}

  @Get(':i')
  touch(@Param('i') i: string, @Session() session: DistributedSession, @Items() items: RequestItems) {
    items.set('large', new Uint8Array(1_000_000));
    weakBags.push(new WeakRef(items));
    session.setString('i', i);
    return { i };
  }
}

describe.each(lockingStores('items'))(
  'request items: the store keeps no request alive (%s)',
  (_name, setup) => {
    let app: INestApplication;
    let url: string;
    let close: () => Promise<void>;

    beforeAll(async () => {
      const store = await setup();
      close = () => store.stop();
      @Module({
        imports: [SessionModule.forRoot(store.options)],
        controllers: [StoreController],
        providers: [UsesItemsAccessor],
      })
      class StoreConnectionsModule {}
      const ref = await Test.createTestingModule({ imports: [StoreConnectionsModule] }).compile();
      app = createPlatformApp(ref, { logger: false });
      await app.listen(0, '127.0.0.1');
      url = await app.getUrl();
    });
    afterAll(async () => {
      await app?.close();
      await close?.();
    });

    it('connections the store opens during a burst of requests do not keep those requests (their items) alive', async () => {
      // Concurrent requests make a pool open connections while they are being handled. A connection (its socket,
      // its timers) created in a request's async context kept that context, the request's whole state, for its
      // life: until it had been idle for pg's idle timeout (10 s).
      const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
      weakBags.length = 0;
      try {
        const responses = await Promise.all(
          Array.from({ length: 40 }, (_, i) => httpJson(url, `/store/${i}`, { agent })),
        );
        expect(responses.map((res) => res.status)).toEqual(responses.map(() => 200));
      } finally {
        agent.destroy();
      }
      v8.setFlagsFromString('--expose-gc');
      const gc = vm.runInNewContext('gc') as () => void;
      let alive: number[] = [];
      // Well under pg's 10 s idle timeout, well over the store's own timers' resolution.
      const until = Date.now() + 4000;
      do {
        await new Promise((resolve) => setTimeout(resolve, 50));
        gc();
        alive = weakBags.flatMap((ref, i) => (ref.deref() === undefined ? [] : [i]));
      } while (alive.length > 0 && Date.now() < until);
      expect(alive).toEqual([]);
    }, 30_000);
  },
);
