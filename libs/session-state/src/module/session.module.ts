import {
  Inject,
  Module,
  type DynamicModule,
  RequestMethod,
  type MiddlewareConsumer,
  type NestModule,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import { HttpAdapterHost, ModulesContainer } from '@nestjs/core';
import type { HttpRequest, HttpResponse } from '../http/http-exchange.js';
import { installResponseHold } from '../http/response-hold.js';
import { stateOfRequest } from '../http/request-context.js';
import type { RequestState } from './request-state.js';
import { DistributedCache } from '../cache/distributed-cache.interface.js';
import { ItemsAccessor } from '../items/items.accessor.js';
import { SessionAccessor } from '../session/session.accessor.js';
import { SessionRuntime } from '../session/session.runtime.js';
import { SessionStore } from '../session/stores/session-store.interface.js';
import { TempDataAccessor } from '../temp-data/temp-data.accessor.js';
import { needsAsyncContext } from './async-context.detector.js';
import { RequestStateMiddleware } from './request-state.middleware.js';
import {
  ConfigurableSessionModule,
  SESSION_MODULE_OPTIONS,
  SESSION_MODULE_OPTIONS_TYPE,
} from './session-module.definition.js';
import type { SessionModuleOptions } from './session-module.options.js';
import { SessionInfrastructure } from './session-infrastructure.js';
import { SessionStateInterceptor } from './session.interceptor.js';
import { UserSessions } from '../users/user-sessions.service.js';

/** The part of an Express application the module wraps. */
const UNWRAPPED_HANDLE = Symbol.for('nest-session-state.express-handle');
type ExpressHandler = (req: HttpRequest, res: HttpResponse, callback: unknown) => void;

interface ExpressHandle {
  handle: ExpressHandler;
  [UNWRAPPED_HANDLE]?: ExpressHandler;
  /** The prototype Express gives every response of this app. */
  response: object;
}

/**
 * Session state, TempData and request items for a Nest app, in one import. Global by default;
 * no `app.use()` needed.
 *
 * @example
 * \@Module({ imports: [SessionModule.forRoot()] })                       // memory, zero config
 * \@Module({ imports: [SessionModule.forRoot({ secrets: [process.env.SESSION_SECRET!],
 *                                               redis: { url: process.env.REDIS_URL } })] })
 * \@Module({ imports: [SessionModule.forRootAsync({ inject: [ConfigService],
 *   useFactory: (config: ConfigService) => ({ redis: { url: config.get('REDIS_URL') } }) })] })
 */
@Module({
  providers: [
    {
      provide: SessionInfrastructure,
      inject: [SESSION_MODULE_OPTIONS],
      useFactory: (options: SessionModuleOptions) => SessionInfrastructure.create(options ?? {}),
    },
    {
      provide: SessionRuntime,
      inject: [SESSION_MODULE_OPTIONS, SessionInfrastructure],
      useFactory: (options: SessionModuleOptions, infrastructure: SessionInfrastructure) =>
        new SessionRuntime(
          infrastructure.options,
          infrastructure.store,
          infrastructure.keyRing,
          options?.memory?.clock,
        ),
    },
    {
      provide: DistributedCache,
      inject: [SessionInfrastructure],
      useFactory: (i: SessionInfrastructure) => i.cache,
    },
    {
      provide: SessionStore,
      inject: [SessionInfrastructure],
      useFactory: (i: SessionInfrastructure) => i.store,
    },
    SessionStateInterceptor,
    RequestStateMiddleware,
    SessionAccessor,
    TempDataAccessor,
    ItemsAccessor,
    UserSessions,
  ],
  exports: [
    DistributedCache,
    SessionStore,
    SessionAccessor,
    TempDataAccessor,
    ItemsAccessor,
    SessionStateInterceptor,
    UserSessions,
  ],
})
export class SessionModule
  extends ConfigurableSessionModule
  implements NestModule, OnApplicationBootstrap, OnApplicationShutdown
{
  constructor(
    @Inject(SessionInfrastructure) private readonly infrastructure: SessionInfrastructure,
    @Inject(RequestStateMiddleware) private readonly middleware: RequestStateMiddleware,
    @Inject(ModulesContainer) private readonly modules: ModulesContainer,
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
  ) {
    super();
  }

  /** Registers the module; with no options: memory store, cookie TempData, a generated key ring. */
  static override forRoot(options: typeof SESSION_MODULE_OPTIONS_TYPE = {}): DynamicModule {
    return super.forRoot(options);
  }

  configure(consumer: MiddlewareConsumer): void {
    const adapter = this.adapterHost.httpAdapter;
    const express = adapter?.getType() === 'express' ? adapter.getInstance<ExpressHandle>() : undefined;
    if (express && typeof express.handle === 'function') {
      // Around Express's own entry point rather than as a Nest middleware route: no path match and
      // no router layer per request, and every middleware (even app.use() ones) sees the state.
      // One wrapper per Express app: a new Nest app over the same Express instance replaces it.
      express[UNWRAPPED_HANDLE] ??= express.handle.bind(express);
      const handle = express[UNWRAPPED_HANDLE];
      installResponseHold(express.response, (req) => stateOfRequest<RequestState>(req)?.responseHold);
      express.handle = (req, res, callback) => this.middleware.around(req, res, handle, callback);
    } else {
      consumer.apply(RequestStateMiddleware).forRoutes({ path: '{*path}', method: RequestMethod.ALL });
    }
  }

  /** Every module has configured its middleware by now, so what injects the accessors is known. */
  onApplicationBootstrap(): void {
    this.middleware.useAsyncContext(
      this.infrastructure.options.asyncContext ??
        needsAsyncContext(this.modules, [SessionAccessor, TempDataAccessor, ItemsAccessor]),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.infrastructure.close();
  }
}
