import { closestOptionName } from '../options/option-name.suggestion.js';
import {
  Inject,
  Module,
  type DynamicModule,
  type NestModule,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { HttpAdapterHost, ModulesContainer } from '@nestjs/core';
import type { PlatformAdapter } from '../http/platforms/platform-adapter.js';
import { installHttpPlatform, unsupportedPlatformMessage } from '../http/platforms/resolve-http-platform.js';
import { SessionConfigurationError } from '../errors/configuration.errors.js';
import { describeOptionValue } from '../options/option-names.check.js';
import { stateOfRequest } from '../request/request-context.js';
import { RequestStateEntry } from '../request/request-entry.js';
import type { RequestState } from '../request/request-state.js';
import { SessionStateInterceptor } from '../request/session-state.interceptor.js';
import { DistributedCache } from '../cache/distributed-cache.interface.js';
import { ItemsAccessor } from '../items/items.accessor.js';
import { SessionAccessor } from '../session/session.accessor.js';
import { SessionRuntime } from '../session/session.runtime.js';
import { SessionStore } from '../session/stores/session-store.interface.js';
import { TempDataAccessor } from '../temp-data/temp-data.accessor.js';
import { classInjectedBy, checkAsyncContextDetection, needsAsyncContext } from './async-context.detector.js';
import {
  ConfigurableSessionModule,
  SESSION_MODULE_ASYNC_OPTIONS_TYPE,
  SESSION_MODULE_OPTIONS,
  SESSION_MODULE_OPTIONS_TYPE,
} from './session-module.definition.js';
import type { SessionModuleOptions } from './session-module.options.js';
import { SessionInfrastructure } from './session-infrastructure.js';
import { pluggableShapeProblem } from './pluggable-shapes.check.js';
import { resolveSessionMetrics } from '../metrics/session-metrics.loader.js';
import { UserSessions } from '../users/user-sessions.service.js';
import { GatewaySessions } from '../gateway/gateway-sessions.service.js';

/** Provided by forRoot() and forRootAsync(): without it the module was imported bare (`imports: [SessionModule]`). */
const CONFIGURED = Symbol('SessionModuleConfigured');

function configured(module: DynamicModule): DynamicModule {
  return { ...module, providers: [...(module.providers ?? []), { provide: CONFIGURED, useValue: true }] };
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
      inject: [
        { token: SESSION_MODULE_OPTIONS, optional: true },
        { token: CONFIGURED, optional: true },
      ],
      useFactory: (options: SessionModuleOptions, configured?: true) => {
        if (!configured) {
          throw new SessionConfigurationError(
            'SessionModule is imported without forRoot(): write imports: [SessionModule.forRoot()] (the in-memory ' +
              'store, zero configuration), SessionModule.forRoot({ ... }), or SessionModule.forRootAsync({ useFactory ' +
              '}) when the options come from ConfigService.',
          );
        }
        return SessionInfrastructure.create(checkedOptions(options));
      },
    },
    {
      provide: SessionRuntime,
      // The store through its token, so that a testing module's overrideProvider(SessionStore) is the store the
      // library uses, not only what the app's injections see.
      inject: [{ token: SESSION_MODULE_OPTIONS, optional: true }, SessionInfrastructure, SessionStore],
      useFactory: (
        options: SessionModuleOptions,
        infrastructure: SessionInfrastructure,
        store: SessionStore,
      ) =>
        // A refusal here comes after the store connected, and Nest calls no shutdown hook for a failed start.
        closingOnFailure(infrastructure, async () => {
          const checked = checkedStore(store, infrastructure);
          return new SessionRuntime(
            infrastructure.options,
            checked,
            infrastructure.keyRing,
            options?.memory?.clock,
            await resolveSessionMetrics(options?.metrics, store),
          );
        }),
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
    RequestStateEntry,
    SessionAccessor,
    TempDataAccessor,
    ItemsAccessor,
    UserSessions,
    GatewaySessions,
  ],
  exports: [
    DistributedCache,
    SessionStore,
    SessionAccessor,
    TempDataAccessor,
    ItemsAccessor,
    SessionStateInterceptor,
    UserSessions,
    GatewaySessions,
  ],
})
export class SessionModule
  extends ConfigurableSessionModule
  implements NestModule, OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown
{
  constructor(
    @Inject(SessionInfrastructure) private readonly infrastructure: SessionInfrastructure,
    @Inject(RequestStateEntry) private readonly entry: RequestStateEntry,
    @Inject(ModulesContainer) private readonly modules: ModulesContainer,
    @Inject(HttpAdapterHost) private readonly adapterHost: HttpAdapterHost,
    @Inject(SessionRuntime) private readonly runtime: SessionRuntime,
  ) {
    super();
  }

  /** Registers the module; with no options: memory store, cookie TempData, a generated key ring. */
  static override forRoot(options: typeof SESSION_MODULE_OPTIONS_TYPE = {}): DynamicModule {
    if (typeof options !== 'object' || options === null || Array.isArray(options)) {
      throw new SessionConfigurationError(
        `SessionModule.forRoot() takes an options object (got ${kindOf(options)}); ` +
          'call it without arguments for the defaults.',
      );
    }
    checkIsGlobal(options);
    return configured(super.forRoot(options));
  }

  /**
   * Registers the module with options built by a factory, a class or an existing provider.
   * @throws SessionConfigurationError when none of useFactory, useClass and useExisting is given, or more than one.
   */
  static override forRootAsync(options: typeof SESSION_MODULE_ASYNC_OPTIONS_TYPE): DynamicModule {
    const given = options as
      Partial<Record<'useFactory' | 'useClass' | 'useExisting', unknown>> | null | undefined;
    if (!given?.useFactory && !given?.useClass && !given?.useExisting) {
      throw new SessionConfigurationError(
        'SessionModule.forRootAsync() needs useFactory, useClass or useExisting to build the options, e.g. ' +
          '{ inject: [ConfigService], useFactory: (config) => ({ secrets: [config.get(...)] }) }.',
      );
    }
    const builders = (['useFactory', 'useClass', 'useExisting'] as const).filter((name) => given[name]);
    if (builders.length > 1) {
      // ConfigurableModuleBuilder would use one and ignore the others without a word.
      throw new SessionConfigurationError(
        `SessionModule.forRootAsync() got ${builders.join(' and ')}: give one of them, the one that builds the ` +
          'options (Nest would use one and ignore the other).',
      );
    }
    checkAsyncOptionNames(given);
    checkFactoryClass(given.useClass);
    checkIsGlobal(options);
    return configured(super.forRootAsync(options));
  }

  /**
   * Enters every request through the platform's entry (Nest's `setOnRequestHook`, before every
   * middleware). Runs for HTTP applications only, before `onModuleInit`.
   * @throws SessionConfigurationError on a platform other than Express or Fastify.
   */
  async configure(): Promise<void> {
    try {
      const adapter = this.adapterHost.httpAdapter as PlatformAdapter | undefined;
      claimApplication(adapter);
      this.entry.usePlatform(
        installHttpPlatform(adapter, this.entry, (raw) => stateOfRequest<RequestState>(raw)?.responseHold),
      );
    } catch (error) {
      await this.abortStart(); // Nest awaits configure(): the refused start closes the store first
      throw error;
    }
  }

  /**
   * An HTTP application whose entry was not configured is refused. One without an HTTP server (an application
   * context: a CLI, a worker, Nest's REPL, `TestingModule.init()`; a microservice) starts: it serves no requests,
   * and `UserSessions`, `DistributedCache` and the store work there (a script that revokes a user's sessions).
   */
  async onModuleInit(): Promise<void> {
    try {
      this.checkApplication();
    } catch (error) {
      await this.abortStart();
      throw error;
    }
  }

  private checkApplication(): void {
    if (this.entry.httpPlatform) return;
    const adapter = this.adapterHost.httpAdapter as PlatformAdapter | null | undefined;
    if (!adapter) {
      // No HTTP server (an application context, a microservice): one module per application all the same.
      claimApplication(this.modules);
      return;
    }
    throw new SessionConfigurationError(unsupportedPlatformMessage(adapter.getType()));
  }

  /**
   * Every module has configured its middleware by now, so what injects the accessors (and `UserSessions`, whose
   * keys a Redis ACL must then give) is known. A refusal closes the store first: the start failed.
   */
  async onApplicationBootstrap(): Promise<void> {
    try {
      this.chooseAsyncContext();
      if (classInjectedBy(this.modules, [UserSessions]) !== undefined) {
        await this.infrastructure.checkUserIndexAccess();
      }
    } catch (error) {
      await this.abortStart();
      throw error;
    }
  }

  /** A refused start closes what the module opened: Nest calls no shutdown hook for an app that failed to start. */
  private async abortStart(): Promise<void> {
    await this.runtime.close();
    await this.infrastructure.close().catch(() => undefined);
  }

  private chooseAsyncContext(): void {
    const chosen = this.infrastructure.options.asyncContext;
    if (chosen === false) {
      const user = classInjectedBy(this.modules, [SessionAccessor, TempDataAccessor, ItemsAccessor]);
      if (user !== undefined) {
        throw new SessionConfigurationError(
          `SessionModule option asyncContext is false, but ${user}: an accessor reads the request from that ` +
            'context, so every use would throw. Remove asyncContext: false (the library turns the context on when ' +
            'something injects an accessor), or take the request from @Session()/@TempData()/@Items() instead.',
        );
      }
    }
    if (chosen !== undefined) {
      this.entry.useAsyncContext(chosen);
      return;
    }
    checkAsyncContextDetection(this.modules, SessionAccessor);
    this.entry.useAsyncContext(
      needsAsyncContext(this.modules, [SessionAccessor, TempDataAccessor, ItemsAccessor]),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await this.runtime.close();
    await this.infrastructure.close();
  }
}

/** `create()`'s result; when it throws, the store the infrastructure connected is closed first. */
async function closingOnFailure<T>(
  infrastructure: SessionInfrastructure,
  create: () => Promise<T>,
): Promise<T> {
  try {
    return await create();
  } catch (error) {
    await infrastructure.close().catch(() => undefined);
    throw error;
  }
}

/** The `SessionStore` provider's store; one that replaced the module's (overrideProvider) is checked as `store` is. */
function checkedStore(store: SessionStore, infrastructure: SessionInfrastructure): SessionStore {
  if (store === infrastructure.store) return store;
  const problem = pluggableShapeProblem({ store }, () => 'The SessionStore provider (overridden)');
  if (problem) throw new SessionConfigurationError(problem);
  if (infrastructure.options.lock && typeof store.tryLock !== 'function') {
    throw new SessionConfigurationError(
      'The SessionStore provider (overridden) has no tryLock, and SessionModule option session.lock needs a store ' +
        'that takes locks (every request that loads the session would answer 503). Override it with a store that ' +
        'implements tryLock (a MemorySessionStore, say), or leave session.lock out of the options under test.',
    );
  }
  return store;
}

/**
 * The applications a SessionModule serves (their Nest HTTP adapters, or module containers without one): one module
 * each. Kept on the global object under a registered symbol, so the package's two builds (its ES module and its
 * CommonJS build, both loaded in one process) share it: each copy's forRoot() would otherwise pass, both would enter
 * every request, and sessions written through one copy's store would be lost to the other's (a probe).
 */
const servedApplications: WeakSet<object> = ((globalThis as Record<symbol, unknown>)[
  Symbol.for('nest-session-state.served-applications')
] ??= new WeakSet<object>()) as WeakSet<object>;

/**
 * Refuses a second SessionModule in one application: each forRoot()/forRootAsync() makes its own store, key
 * ring and user index, and only one of them would serve the requests, the other's injections then seeing
 * none of it (a session bound through one UserSessions, listed empty through the other).
 */
function claimApplication(adapter: object | undefined): void {
  if (!adapter) return;
  if (servedApplications.has(adapter)) {
    throw new SessionConfigurationError(
      'SessionModule is imported more than once in this application (SessionModule.forRoot() or forRootAsync() ' +
        'in two modules): each import makes its own session store, key ring and user index, and only one would ' +
        'serve requests. Import it once, in the root module: it is global, so every module can inject its ' +
        'providers. With isGlobal: false, import it once in a module of your own that exports it ' +
        '(exports: [SessionModule]), and import that module where it is needed. Two copies of the package count ' +
        'too: its ES module build (import) and its CommonJS build (require) loaded side by side each bring one ' +
        '(docs/configuration.md, "One build per process").',
    );
  }
  servedApplications.add(adapter);
}

/** `isGlobal` next to the options: a boolean, as every other switch. */
/** What `forRootAsync()` takes (Nest's ConfigurableModuleAsyncOptions, and the module's `isGlobal`). */
const ASYNC_OPTION_NAMES = [
  'imports',
  'inject',
  'useFactory',
  'useClass',
  'useExisting',
  'provideInjectionTokensFrom',
  'isGlobal',
];

/** Refuses a name `forRootAsync()` does not know (an option meant for the factory's result, a typo). */
function checkAsyncOptionNames(options: object): void {
  const unknown = Object.keys(options).find((name) => !ASYNC_OPTION_NAMES.includes(name));
  if (unknown === undefined) return;
  const closest = closestOptionName(unknown, { names: ASYNC_OPTION_NAMES });
  throw new SessionConfigurationError(
    `SessionModule.forRootAsync() option ${unknown} is unknown: ` +
      (closest ? `did you mean ${closest}? ` : '') +
      `it takes ${ASYNC_OPTION_NAMES.join(', ')}; the session options themselves come from the factory.`,
  );
}

/** `useClass` must build the options with `createSessionOptions()` (SessionModuleOptionsFactory). */
function checkFactoryClass(useClass: unknown): void {
  if (useClass === undefined) return;
  const methods = typeof useClass === 'function' ? (useClass.prototype as object | undefined) : undefined;
  if (typeof (methods as { createSessionOptions?: unknown } | undefined)?.createSessionOptions === 'function')
    return;
  const which = typeof useClass === 'function' ? `; ${useClass.name || 'the class given'} has none` : '';
  throw new SessionConfigurationError(
    'SessionModule.forRootAsync() option useClass must be a class with a createSessionOptions() method that ' +
      `returns the options (implements SessionModuleOptionsFactory)${which}.`,
  );
}

/** How a value that is not an options object reads in a message. */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  return Array.isArray(value) ? 'an array' : typeof value;
}

function checkIsGlobal(options: object | null | undefined): void {
  const isGlobal = (options as { isGlobal?: unknown } | null | undefined)?.isGlobal;
  if (isGlobal === undefined || typeof isGlobal === 'boolean') return;
  throw new SessionConfigurationError(
    `SessionModule option isGlobal must be true or false (got ${describeOptionValue(isGlobal)}); ` +
      'leave it out for a global module.',
  );
}

/**
 * The options the module got: forRoot() always gives an object, so anything else came from a
 * forRootAsync() factory or class that returned nothing (a forgotten `return` would otherwise start
 * on a generated key ring and the memory store, with only a warning).
 */
function checkedOptions(options: SessionModuleOptions | null | undefined): SessionModuleOptions {
  if (typeof options === 'object' && options !== null && !Array.isArray(options)) return options;
  throw new SessionConfigurationError(
    `SessionModule.forRootAsync(): the options factory returned ${kindOf(options)}; ` +
      'return an options object ({} for the defaults).',
  );
}
