// One benchmark server: a Nest 12 (express) app with GET /rmw, /read, /untouched, in the configuration
// named by argv[2], listening on a free 127.0.0.1 port. Started by bench/run.mjs with fork(): it reports
// { type: 'ready', port } over IPC and exits on { type: 'stop' } (so --cpu-prof can write its profile)
// or when the parent goes away. Plain JavaScript: the Nest decorators are applied as functions.
import 'reflect-metadata';
import { Controller, Get, Injectable, Module, Req, RequestMethod } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { serveBenchIpc } from './lib/app-ipc.mjs';
import { baseConfigOf } from './lib/platforms.mjs';

const [row, optionsJson = '{}'] = process.argv.slice(2);
const config = baseConfigOf(row);
const options = JSON.parse(optionsJson);
/** The library under test: this workspace's build, or for a `-ref` row the reference build (`--reference`). */
const LIBRARY = options.referencePackage ?? 'nest-session-state';
const COOKIE_NAME = '.Nest.Session';

/** `@Decorator()` on a method, and parameter decorators on its parameters, without decorator syntax. */
function route(cls, method, path, ...parameterDecorators) {
  const descriptor = Object.getOwnPropertyDescriptor(cls.prototype, method);
  parameterDecorators.forEach((decorate, index) => decorate(cls.prototype, method, index));
  Get(path)(cls.prototype, method, descriptor);
}

function controllerClass(kind, Session) {
  if (kind === 'baseline') {
    class BaselineController {
      rmw() {
        return { count: 1 };
      }
      read() {
        return { count: 1 };
      }
      untouched() {
        return { ok: true };
      }
    }
    route(BaselineController, 'rmw', 'rmw');
    route(BaselineController, 'read', 'read');
    route(BaselineController, 'untouched', 'untouched');
    Controller()(BaselineController);
    return BaselineController;
  }
  if (kind === 'nss') {
    class NssController {
      rmw(session) {
        const count = (session.getInt32('count') ?? 0) + 1;
        session.setInt32('count', count);
        return { count };
      }
      read(session) {
        return { count: session.getInt32('count') ?? 0 };
      }
      untouched() {
        return { ok: true };
      }
    }
    route(NssController, 'rmw', 'rmw', Session());
    route(NssController, 'read', 'read', Session());
    route(NssController, 'untouched', 'untouched');
    Controller()(NssController);
    return NssController;
  }
  if (kind === 'limit') {
    // `Session` is the handlers of bench/limit.mjs's hand-written session here (limitHandlers), given `req`.
    class LimitController {
      untouched() {
        return { ok: true };
      }
    }
    Object.assign(LimitController.prototype, Session);
    route(LimitController, 'rmw', 'rmw', Req());
    route(LimitController, 'read', 'read', Req());
    route(LimitController, 'untouched', 'untouched');
    Controller()(LimitController);
    return LimitController;
  }
  class ExpressSessionController {
    rmw(req) {
      const count = (req.session.count ?? 0) + 1;
      req.session.count = count;
      return { count };
    }
    read(req) {
      return { count: req.session.count ?? 0 };
    }
    untouched() {
      return { ok: true };
    }
  }
  route(ExpressSessionController, 'rmw', 'rmw', Req());
  route(ExpressSessionController, 'read', 'read', Req());
  route(ExpressSessionController, 'untouched', 'untouched');
  Controller()(ExpressSessionController);
  return ExpressSessionController;
}

/**
 * `nss-redis-app`: nss-redis as an application is written (the sample app's shape): the handlers call a
 * service that reaches the session through an injected `SessionAccessor`, so the library runs every
 * request inside its AsyncLocalStorage context, and one Nest middleware (as the sample app's
 * VerificationMiddleware) records a request item through an injected `ItemsAccessor` on every route.
 */
async function createRealisticApp(moduleOptions, logger) {
  const { SessionModule, SessionAccessor, ItemsAccessor, ItemKey } = await import(LIBRARY);
  const IS_VERIFIED = new ItemKey('isVerified');
  // Constructor parameter types as TypeScript's emitDecoratorMetadata would record them.
  const inject = (cls, ...types) => Reflect.defineMetadata('design:paramtypes', types, cls);

  class VerificationMiddleware {
    constructor(items) {
      this.items = items;
    }
    use(_req, _res, next) {
      this.items.current.set(IS_VERIFIED, true); // "perform some verification"
      next();
    }
  }
  inject(VerificationMiddleware, ItemsAccessor);
  Injectable()(VerificationMiddleware);

  class CounterService {
    constructor(sessions) {
      this.sessions = sessions;
    }
    async increment() {
      const session = await this.sessions.load();
      const count = (session.getInt32('count') ?? 0) + 1;
      session.setInt32('count', count);
      return count;
    }
    async read() {
      return (await this.sessions.load()).getInt32('count') ?? 0;
    }
  }
  inject(CounterService, SessionAccessor);
  Injectable()(CounterService);

  class AppController {
    constructor(counter) {
      this.counter = counter;
    }
    async rmw() {
      return { count: await this.counter.increment() };
    }
    async read() {
      return { count: await this.counter.read() };
    }
    untouched() {
      return { ok: true };
    }
  }
  inject(AppController, CounterService);
  route(AppController, 'rmw', 'rmw');
  route(AppController, 'read', 'read');
  route(AppController, 'untouched', 'untouched');
  Controller()(AppController);

  class AppModule {
    configure(consumer) {
      consumer.apply(VerificationMiddleware).forRoutes({ path: '{*path}', method: RequestMethod.ALL });
    }
  }
  Module({
    imports: [SessionModule.forRoot(moduleOptions)],
    controllers: [AppController],
    providers: [CounterService],
  })(AppModule);
  return NestFactory.create(AppModule, { logger });
}

async function createApp() {
  const logger = ['error', 'warn'];
  if (config === 'baseline' || config === 'baseline-2') {
    class AppModule {}
    Module({ controllers: [controllerClass('baseline')] })(AppModule);
    return { app: await NestFactory.create(AppModule, { logger }), close: async () => undefined };
  }
  if (config.startsWith('nss-')) {
    const { SessionModule, Session } = await import(LIBRARY);
    const moduleOptions = { secrets: [options.secret] };
    // operationTimeout: only bench/instructions.mjs sets it (under valgrind an operation may take seconds).
    const timeouts = options.operationTimeout
      ? { operationTimeoutInMilliseconds: options.operationTimeout }
      : {};
    if (config === 'nss-redis') moduleOptions.redis = { url: options.redisUrl, ...timeouts };
    else if (config === 'nss-redis-near')
      moduleOptions.redis = {
        url: options.redisUrl,
        ...timeouts,
        // 60 s instead of the default 5 s: the interleaved slices of other configurations put ~30 s between
        // two slices of this one, and each slice would otherwise start with every copy expired.
        nearCache: { maxAgeInMilliseconds: options.nearCacheMaxAge ?? 60_000 },
      };
    else if (config === 'nss-cluster') moduleOptions.redis = { clusterNodes: options.clusterNodes };
    else if (config === 'nss-postgres') {
      const { nssPostgresOptions } = await import('./lib/postgres.mjs');
      moduleOptions.postgres = nssPostgresOptions(options.databaseUrl);
    } else if (config === 'nss-redis-app') {
      moduleOptions.redis = { url: options.redisUrl, ...timeouts };
      return { app: await createRealisticApp(moduleOptions, logger), close: async () => undefined };
    } else if (config !== 'nss-memory') throw new Error(`unknown configuration ${config}`);
    class AppModule {}
    Module({
      imports: [SessionModule.forRoot(moduleOptions)],
      controllers: [controllerClass('nss', Session)],
    })(AppModule);
    return { app: await NestFactory.create(AppModule, { logger }), close: async () => undefined };
  }
  if (config === 'limit-redis') {
    const { createLimitSessions, limitHandlers } = await import('./limit.mjs');
    const sessions = await createLimitSessions({
      redisUrl: options.redisUrl,
      secret: options.secret,
      // The routes pass Express's `req` (`@Req()`), whose `res` is the response.
      http: {
        cookieHeader: (req) => req.headers.cookie,
        setCookie: (req, value) => req.res.setHeader('Set-Cookie', value),
      },
    });
    class AppModule {}
    Module({ controllers: [controllerClass('limit', limitHandlers(sessions))] })(AppModule);
    return { app: await NestFactory.create(AppModule, { logger }), close: sessions.close };
  }
  if (config.startsWith('express-session-')) {
    const { default: session } = await import('express-session');
    let store;
    let close = async () => undefined;
    if (config === 'express-session-redis') {
      const { createClient } = await import('redis');
      const { RedisStore } = await import('connect-redis');
      const client = createClient({ url: options.redisUrl });
      client.on('error', (error) => console.error(`node-redis: ${error.message}`));
      await client.connect();
      store = new RedisStore({ client, ttl: 1200 }); // 20 min, as nest-session-state's idleTimeout
      close = async () => {
        await client.close();
      };
    } else if (config === 'express-session-postgres') {
      const { connectPgSimpleStore } = await import('./lib/postgres.mjs');
      ({ store, close } = await connectPgSimpleStore(session, options.databaseUrl));
    } else if (config === 'express-session-memory') {
      store = new session.MemoryStore();
    } else {
      throw new Error(`unknown configuration ${config}`);
    }
    class AppModule {}
    Module({ controllers: [controllerClass('express-session')] })(AppModule);
    const app = await NestFactory.create(AppModule, { logger });
    app.use(
      session({
        name: COOKIE_NAME,
        secret: options.secret,
        store,
        resave: false,
        saveUninitialized: false,
        // The same cookie as nest-session-state's default: path /, HttpOnly, SameSite=Lax, no Expires.
        cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure: false },
      }),
    );
    return { app, close };
  }
  throw new Error(`unknown configuration ${config}`);
}

const { app, close } = await createApp();
await app.listen(0, '127.0.0.1');
serveBenchIpc(app.getHttpServer(), async () => {
  await app.close();
  await close();
});
