import {
  type INestApplication,
  Controller,
  Get,
  Inject,
  Injectable,
  Module,
  forwardRef,
  type MiddlewareConsumer,
  type NestMiddleware,
  type NestModule,
  UseGuards,
  type CanActivate,
} from '@nestjs/common';
import { LazyModuleLoader, ModuleRef } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import {
  Items,
  ItemsAccessor,
  RequestItems,
  Session,
  SessionAccessor,
  SessionConfigurationError,
  SessionModule,
  type SessionModuleOptions,
  TempDataAccessor,
} from 'nest-session-state';
import { createPlatformApp } from '../support/platform/test-platform.js';

// The library's AsyncLocalStorage is private: observe it through its effect, whether an accessor
// reached without injection (app.get()) finds the current request.
async function accessorWorks(use: () => unknown): Promise<boolean> {
  try {
    await use();
    return true;
  } catch {
    return false;
  }
}

/** The app under test, for code that reaches an accessor without injecting anything. */
let current: INestApplication | undefined;

@Controller('ctx')
class ProbeController {
  // Reaches the accessor without injecting it: works only when the async context is on.
  @Get('lookup')
  async lookup(@Items() items: RequestItems) {
    items.set('seen', 'by decorator');
    const accessor = current!.get(ItemsAccessor);
    const viaAccessor = await accessorWorks(() => accessor.current.get('seen'));
    return { viaAccessor };
  }

  // The decorators need no async context.
  @Get('from-app-use')
  fromAppUse(@Items() items: RequestItems) {
    return { seen: items.get('appUse') ?? null };
  }

  @Get('counter')
  counter(@Session() session: Session) {
    const count = (session.getInt32('count') ?? 0) + 1;
    session.setInt32('count', count);
    return { count };
  }
}

@Injectable()
class InjectsItems {
  constructor(readonly items: ItemsAccessor) {}
}

@Injectable()
class PropertyInjected implements CanActivate {
  @Inject(SessionAccessor) private readonly sessions!: SessionAccessor;
  canActivate() {
    return this.sessions.session !== undefined;
  }
}

@Controller('guarded')
class GuardedController {
  @Get()
  @UseGuards(PropertyInjected)
  ok() {
    return { ok: true };
  }
}

@Injectable()
class ForwardRefUser {
  constructor(@Inject(forwardRef(() => TempDataAccessor)) readonly tempData: TempDataAccessor) {}
}

@Injectable()
class ItemsMiddleware implements NestMiddleware {
  constructor(private readonly items: ItemsAccessor) {}
  use(_req: unknown, _res: unknown, next: () => void) {
    this.items.current.set('fromMiddleware', true);
    next();
  }
}

@Injectable()
class UsesModuleRef {
  constructor(readonly moduleRef: ModuleRef) {}
}

@Injectable()
class UsesLazyLoader {
  constructor(readonly loader: LazyModuleLoader) {}
}

interface SessionSource {
  readonly session: unknown;
}

@Injectable()
class UsesAlias {
  constructor(@Inject('SESSIONS') readonly sessions: SessionSource) {}
}

@Module({ providers: [UsesModuleRef] })
class ModuleRefUserModule {}

@Module({ providers: [UsesLazyLoader] })
class LazyLoaderUserModule {}

@Module({ providers: [{ provide: 'SESSIONS', useClass: SessionAccessor }, UsesAlias] })
class AliasUserModule {}

@Module({ providers: [InjectsItems] })
class ConstructorUserModule {}

@Module({ providers: [ForwardRefUser] })
class ForwardRefUserModule {}

@Module({})
class MiddlewareUserModule implements NestModule {
  configure(consumer: MiddlewareConsumer) {
    consumer.apply(ItemsMiddleware).forRoutes('ctx');
  }
}

@Module({ controllers: [GuardedController], providers: [PropertyInjected] })
class GuardUserModule {}

/** An app with only the probe controller (the shared test app injects SessionAccessor itself). */
async function startSessionApp(
  options: SessionModuleOptions,
  {
    imports = [],
    beforeListen,
  }: { imports?: (new () => unknown)[]; beforeListen?: (app: INestApplication) => void },
) {
  @Module({ imports: [SessionModule.forRoot(options), ...imports], controllers: [ProbeController] })
  class ProbeAppModule {}
  const ref = await Test.createTestingModule({ imports: [ProbeAppModule] }).compile();
  const app = createPlatformApp(ref, { logger: false });
  beforeListen?.(app);
  current = app;
  await app.listen(0, '127.0.0.1');
  return { app, url: await app.getUrl() };
}

async function lookupWorks(url: string): Promise<boolean> {
  const { body } = await request(url).get('/ctx/lookup').expect(200);
  return (body as { viaAccessor: boolean }).viaAccessor;
}

describe('asyncContext: the AsyncLocalStorage context only when something uses the accessors', () => {
  it('is off when nothing injects an accessor: decorators work, an accessor fetched with app.get() finds no request', async () => {
    const { app, url } = await startSessionApp({}, {});
    try {
      expect(await lookupWorks(url)).toBe(false);
      const first = await request(url).get('/ctx/counter').expect(200, { count: 1 });
      const cookie = first.headers['set-cookie'];
      await request(url).get('/ctx/counter').set('Cookie', cookie).expect(200, { count: 2 });
    } finally {
      await app.close();
    }
  });

  it('asyncContext: true turns it on without any injection', async () => {
    const { app, url } = await startSessionApp({ asyncContext: true }, {});
    try {
      expect(await lookupWorks(url)).toBe(true);
    } finally {
      await app.close();
    }
  });

  it('asyncContext: false keeps it off where only ModuleRef might reach an accessor', async () => {
    const { app, url } = await startSessionApp({ asyncContext: false }, { imports: [ModuleRefUserModule] });
    try {
      expect(await lookupWorks(url)).toBe(false);
    } finally {
      await app.close();
    }
  });

  it('asyncContext: false with a provider that injects an accessor fails at startup naming both (every use would throw)', async () => {
    await expect(
      startSessionApp({ asyncContext: false }, { imports: [ConstructorUserModule] }),
    ).rejects.toThrow(
      /^SessionModule option asyncContext is false, but InjectsItems \(it injects ItemsAccessor\): .*Remove asyncContext: false/,
    );
  });

  it.each([
    ['a provider constructor', ConstructorUserModule],
    ['a forwardRef() injection', ForwardRefUserModule],
    ['a Nest middleware applied by another module', MiddlewareUserModule],
    ['a guard property injection', GuardUserModule],
    ['a provider of SessionAccessor under another token (useClass)', AliasUserModule],
    ['ModuleRef (moduleRef.get() can fetch an accessor)', ModuleRefUserModule],
    ['LazyModuleLoader (a lazy module may inject an accessor)', LazyLoaderUserModule],
  ])('is on for %s', async (_what, userModule) => {
    const { app, url } = await startSessionApp({}, { imports: [userModule] });
    try {
      expect(await lookupWorks(url)).toBe(true);
    } finally {
      await app.close();
    }
  });

  it('an app.use() middleware added before Nest reaches the items through the accessor (asyncContext: true)', async () => {
    const { app, url } = await startSessionApp(
      { asyncContext: true },
      {
        beforeListen: (nest) =>
          nest.use((_req: unknown, _res: unknown, next: () => void) => {
            nest.get(ItemsAccessor).current.set('appUse', 'yes');
            next();
          }),
      },
    );
    try {
      await request(url).get('/ctx/from-app-use').expect(200, { seen: 'yes' });
    } finally {
      await app.close();
    }
  });

  it('rejects a non-boolean asyncContext at startup, naming the option', async () => {
    await expect(startSessionApp({ asyncContext: 'yes' as unknown as boolean }, {})).rejects.toThrow(
      SessionConfigurationError,
    );
    await expect(startSessionApp({ asyncContext: 'yes' as unknown as boolean }, {})).rejects.toThrow(
      /SessionModule option asyncContext must be true or false/,
    );
  });
});
