// One Fastify benchmark server: a Nest 12 app on FastifyAdapter with GET /rmw, /read, /untouched, in the
// configuration named by argv[2] (fastify-baseline, limit-redis-fastify, nss-memory-fastify,
// nss-redis-fastify, fastify-session-redis), listening on a free 127.0.0.1 port. The Fastify counterpart of bench/server.mjs,
// started the same way by bench/run.mjs (fork, same IPC: bench/lib/app-ipc.mjs). Plain JavaScript: the
// Nest decorators are applied as functions.
import 'reflect-metadata';
import { Controller, Get, Module, Req, Res } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { serveBenchIpc } from './lib/app-ipc.mjs';
import { baseConfigOf } from './lib/platforms.mjs';

const [row, optionsJson = '{}'] = process.argv.slice(2);
const config = baseConfigOf(row);
const options = JSON.parse(optionsJson);
/** The library under test: this workspace's build, or for a `-ref` row the reference build (`--reference`). */
const LIBRARY = options.referencePackage ?? 'nest-session-state';
const COOKIE_NAME = '.Nest.Session';
const logger = ['error', 'warn'];

/** `@Get(path)` on a method, and parameter decorators on its parameters, without decorator syntax. */
function route(cls, method, path, ...parameterDecorators) {
  const descriptor = Object.getOwnPropertyDescriptor(cls.prototype, method);
  parameterDecorators.forEach((decorate, index) => decorate(cls.prototype, method, index));
  Get(path)(cls.prototype, method, descriptor);
}

/** A controller class with rmw/read/untouched; `param` decorates the session parameter of rmw and read. */
function controller(handlers, param) {
  class BenchController {}
  Object.assign(BenchController.prototype, handlers);
  for (const name of ['rmw', 'read']) route(BenchController, name, name, ...(param ? [param()] : []));
  route(BenchController, 'untouched', 'untouched');
  Controller()(BenchController);
  return BenchController;
}

const untouched = () => ({ ok: true });

async function createApp() {
  const create = (module) => NestFactory.create(module, new FastifyAdapter(), { logger });
  if (config === 'fastify-baseline') {
    class AppModule {}
    Module({
      controllers: [controller({ rmw: () => ({ count: 1 }), read: () => ({ count: 1 }), untouched })],
    })(AppModule);
    return { app: await create(AppModule), close: async () => undefined };
  }
  if (config === 'limit-redis-fastify') {
    // The limit of bench/server.mjs's `limit-redis` (bench/limit.mjs), on Fastify. Its routes get Fastify's
    // reply (`@Res({ passthrough: true })`: Nest still sends what the handler returns), which has both the
    // request's headers and the reply's own header setter; a FastifyRequest has no way to its reply.
    const { createLimitSessions, limitHandlers } = await import('./limit.mjs');
    const sessions = await createLimitSessions({
      redisUrl: options.redisUrl,
      secret: options.secret,
      http: {
        cookieHeader: (reply) => reply.request.headers.cookie,
        setCookie: (reply, value) => reply.header('set-cookie', value),
      },
    });
    const handlers = { ...limitHandlers(sessions), untouched };
    class AppModule {}
    Module({ controllers: [controller(handlers, () => Res({ passthrough: true }))] })(AppModule);
    return { app: await create(AppModule), close: sessions.close };
  }
  if (config === 'nss-memory-fastify' || config === 'nss-redis-fastify') {
    const { SessionModule, Session } = await import(LIBRARY);
    const moduleOptions = { secrets: [options.secret] };
    if (config === 'nss-redis-fastify') {
      moduleOptions.redis = {
        url: options.redisUrl,
        // Only bench/instructions.mjs sets it (under valgrind an operation may take seconds).
        ...(options.operationTimeout ? { operationTimeoutInMilliseconds: options.operationTimeout } : {}),
      };
    }
    const handlers = {
      rmw(session) {
        const count = (session.getInt32('count') ?? 0) + 1;
        session.setInt32('count', count);
        return { count };
      },
      read: (session) => ({ count: session.getInt32('count') ?? 0 }),
      untouched,
    };
    class AppModule {}
    Module({ imports: [SessionModule.forRoot(moduleOptions)], controllers: [controller(handlers, Session)] })(
      AppModule,
    );
    return { app: await create(AppModule), close: async () => undefined };
  }
  if (config === 'fastify-session-redis') {
    const [{ default: fastifyCookie }, { default: fastifySession }, { createClient }, { RedisStore }] =
      await Promise.all([
        import('@fastify/cookie'),
        import('@fastify/session'),
        import('redis'),
        import('connect-redis'),
      ]);
    const client = createClient({ url: options.redisUrl });
    client.on('error', (error) => console.error(`node-redis: ${error.message}`));
    await client.connect();
    const handlers = {
      rmw(req) {
        const count = (req.session.get('count') ?? 0) + 1;
        req.session.set('count', count);
        return { count };
      },
      read: (req) => ({ count: req.session.get('count') ?? 0 }),
      untouched,
    };
    class AppModule {}
    Module({ controllers: [controller(handlers, Req)] })(AppModule);
    const app = await create(AppModule);
    await app.register(fastifyCookie);
    await app.register(fastifySession, {
      cookieName: COOKIE_NAME,
      secret: options.secret,
      // connect-redis 9 over node-redis, as the express peer; ttl 1200 s, as the 20 min idle timeout.
      store: new RedisStore({ client, ttl: 1200 }),
      saveUninitialized: false,
      // rolling stays at its default (true): @fastify/session has no `touch`, so re-saving the session
      // (and re-sending its cookie) on every request is how it keeps an idle timeout sliding.
      // The same cookie as nest-session-state's default: path /, HttpOnly, SameSite=Lax, no Expires.
      cookie: { path: '/', httpOnly: true, sameSite: 'lax', secure: false },
    });
    return {
      app,
      close: async () => {
        await client.close();
      },
    };
  }
  throw new Error(`unknown configuration ${config}`);
}

const { app, close } = await createApp();
await app.listen(0, '127.0.0.1');
serveBenchIpc(app.getHttpServer(), async () => {
  await app.close();
  await close();
});
