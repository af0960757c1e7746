import {
  Catch,
  Controller,
  Get,
  HttpCode,
  Injectable,
  Module,
  Param,
  Post,
  Query,
  Req,
  UseFilters,
  UseGuards,
  UseInterceptors,
  type ArgumentsHost,
  type CallHandler,
  type CanActivate,
  type ExceptionFilter,
  type ExecutionContext,
  type INestApplication,
  type MiddlewareConsumer,
  type NestInterceptor,
  type NestMiddleware,
  type NestModule,
  type PipeTransform,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { Request, Response } from 'express';
import { map, type Observable } from 'rxjs';
import {
  Item,
  ItemKey,
  Items,
  ItemsAccessor,
  Session,
  SessionAccessor,
  SessionModule,
  TempData,
  TempDataAccessor,
  type RequestItems,
  type SessionModuleOptions,
  type TempDataDictionary,
} from 'nest-session-state';
import { createPlatformApp, sendBody } from '../../support/platform/test-platform.js';

/** A typed key, as a library would export it: `get` returns `number | undefined` without a cast. */
export const COUNT = new ItemKey<number>('count');
/** Set by the guard; the handler must see it. */
export const GUARD_STAMP = new ItemKey<string>('guardStamp');
/** Each stage of the pipeline appends what it saw here. */
export const OBSERVATIONS = new ItemKey<Observation[]>('observations');
/** A symbol key, for the key-distinctness test. */
export const SYMBOL_X = Symbol('x');
/** An ItemKey whose description equals a string key: still a different key. */
export const ITEM_KEY_X = new ItemKey<string>('x');

/** What one stage of the pipeline saw in the items bag. */
export interface Observation {
  stage: string;
  isVerified: unknown;
  count: number | undefined;
  requestValue: unknown;
  guardStamp: string | undefined;
}

function observe(stage: string, items: RequestItems): Observation {
  return {
    stage,
    isVerified: items.get('isVerified'),
    count: items.get(COUNT),
    requestValue: items.get('requestValue'),
    guardStamp: items.get(GUARD_STAMP),
  };
}

function record(stage: string, items: RequestItems): void {
  const list = items.get(OBSERVATIONS) ?? [];
  list.push(observe(stage, items));
  items.set(OBSERVATIONS, list);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const nextImmediate = () => new Promise<void>((resolve) => setImmediate(resolve));
const nextTick = () => new Promise<void>((resolve) => process.nextTick(resolve));

/** A plain singleton service: reads the bag through ItemsAccessor (AsyncLocalStorage). */
@Injectable()
export class ItemsProbeService {
  inFlight = 0;
  maxInFlight = 0;
  /**
   * When set, each {@link chain} waits until this many requests are inside it (or 30 s passed), so
   * that many requests are suspended in their async chains at the same moment. The fallback is long: a
   * busy CI run on Node 20 had 880 of 1,000 inside after 10 s (1,000 connections opened at once can
   * overflow the listen backlog of 511, and those come back with TCP's retransmission backoff).
   */
  barrier = 0;
  private waiting: (() => void)[] = [];
  /** Bags handed out by finished requests, to check that nothing keeps them alive. */
  readonly weakBags: WeakRef<RequestItems>[] = [];

  constructor(private readonly items: ItemsAccessor) {}

  view(stage = 'service'): Observation {
    return observe(stage, this.items.current);
  }

  current(): RequestItems {
    return this.items.current;
  }

  /**
   * Reads this request's value through awaits, timers, setImmediate and nextTick, writing a value of
   * its own half-way; returns everything it read, which must all belong to this request.
   */
  async chain(id: string): Promise<string[]> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      const seen: string[] = [];
      const read = () => String(this.items.current.get('requestValue'));
      await Promise.resolve();
      seen.push(read());
      await this.gate();
      await sleep(Math.floor(Math.random() * 25));
      seen.push(read());
      this.items.current.set('echo', `echo:${id}`);
      await nextImmediate();
      seen.push(read());
      await nextTick();
      seen.push(String(this.items.current.get('echo')).slice('echo:'.length));
      await new Promise<void>((resolve) =>
        setTimeout(
          () => {
            seen.push(read());
            resolve();
          },
          Math.floor(Math.random() * 10),
        ),
      );
      seen.push(await this.nested());
      return seen;
    } finally {
      this.inFlight--;
    }
  }

  private gate(): Promise<void> {
    if (this.barrier <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.waiting.push(resolve);
      if (this.inFlight >= this.barrier) this.release();
      else if (this.waiting.length === 1) setTimeout(() => this.release(), 30_000).unref();
    });
  }

  private release(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve();
  }

  private async nested(): Promise<string> {
    await nextImmediate();
    await sleep(1);
    return String(this.items.current.get('requestValue'));
  }
}

/** An app middleware registered through Nest (`configure(consumer)`), the seed's `isVerified` example. */
@Injectable()
export class VerifyMiddleware implements NestMiddleware {
  constructor(private readonly items: ItemsAccessor) {}

  use(req: Request, _res: Response, next: () => void): void {
    const items = this.items.current;
    items.set('isVerified', req.headers['x-verified'] !== 'false');
    items.set(COUNT, Number(req.headers['x-count'] ?? 42));
    if (typeof req.headers['x-value'] === 'string') items.set('requestValue', req.headers['x-value']);
    record('middleware', items);
    next();
  }
}

@Injectable()
export class ItemsGuard implements CanActivate {
  constructor(private readonly items: ItemsAccessor) {}

  canActivate(context: ExecutionContext): boolean {
    const items = this.items.current;
    record('guard', items);
    items.set(GUARD_STAMP, `guard saw isVerified=${String(items.get('isVerified'))}`);
    if (context.switchToHttp().getRequest<Request>().headers['x-set-keys'] === 'yes') {
      items.set('x', 'string key').set(SYMBOL_X, 'symbol key').set(ITEM_KEY_X, 'ItemKey');
    }
    return true;
  }
}

@Injectable()
export class ItemsInterceptor implements NestInterceptor {
  constructor(private readonly items: ItemsAccessor) {}

  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    record('interceptor', this.items.current);
    return next
      .handle()
      .pipe(
        map((body: unknown) =>
          body && typeof body === 'object' && 'observations' in body
            ? { ...body, afterHandler: observe('interceptor-after', this.items.current) }
            : body,
        ),
      );
  }
}

@Injectable()
export class ItemsPipe implements PipeTransform {
  constructor(private readonly items: ItemsAccessor) {}

  transform(value: unknown): unknown {
    record('pipe', this.items.current);
    return value;
  }
}

/** Thrown by a handler so the exception filter runs. */
export class ItemsProbeError extends Error {}

@Catch(ItemsProbeError)
export class ItemsFilter implements ExceptionFilter {
  constructor(private readonly items: ItemsAccessor) {}

  catch(_error: ItemsProbeError, host: ArgumentsHost): void {
    const items = this.items.current;
    record('filter', items);
    sendBody(host.switchToHttp().getResponse(), { observations: items.get(OBSERVATIONS) }, 418);
  }
}

@Controller('items')
@UseGuards(ItemsGuard)
@UseInterceptors(ItemsInterceptor)
@UseFilters(ItemsFilter)
export class ItemsController {
  constructor(
    private readonly probe: ItemsProbeService,
    private readonly accessor: ItemsAccessor,
  ) {}

  @Get('pipeline')
  pipeline(
    @Query('q', ItemsPipe) q: string,
    @Items() items: RequestItems,
    @Item('isVerified') isVerified: unknown,
    @Item(COUNT) count: number | undefined,
    @Item(GUARD_STAMP) guardStamp: string | undefined,
  ) {
    record('handler', items);
    return {
      q,
      params: { isVerified, count, guardStamp },
      service: this.probe.view(),
      sameBag: this.accessor.current === items && this.probe.current() === items,
      observations: items.get(OBSERVATIONS),
    };
  }

  @Get('pipeline/throw')
  pipelineThrows(@Query('q', ItemsPipe) _q: string, @Items() items: RequestItems) {
    record('handler', items);
    throw new ItemsProbeError('handler failed on purpose');
  }

  @Post('leave/:value')
  @HttpCode(200)
  leave(@Items() items: RequestItems, @Param('value') value: string, @Req() req: Request) {
    items.set('left', value);
    items.set(Symbol.for('left'), value);
    this.probe.weakBags.push(new WeakRef(items));
    return { port: req.socket.remotePort, left: items.get('left') };
  }

  @Get('left')
  left(@Items() items: RequestItems, @Req() req: Request) {
    return {
      port: req.socket.remotePort,
      left: items.get('left') ?? null,
      symbolLeft: items.get(Symbol.for('left')) ?? null,
      keys: [...items.keys()].map((k) => String(k)),
      fromService: this.probe.current().has('left'),
    };
  }

  @Get('load/:id')
  async load(
    @Param('id') id: string,
    @Items() items: RequestItems,
    @Item('requestValue') fromParam: unknown,
    @Query('q', ItemsPipe) _q: string,
  ) {
    const seen = [String(fromParam), String(items.get('requestValue'))];
    seen.push(...(await this.probe.chain(id)));
    await Promise.all([sleep(1), nextImmediate()]);
    seen.push(
      String(this.accessor.current.get('requestValue')),
      String(items.get('echo')).slice('echo:'.length),
    );
    const stages = (items.get(OBSERVATIONS) ?? []).map((o) => `${o.stage}=${String(o.requestValue)}`);
    return { id, seen, stages, sameBag: this.accessor.current === items };
  }

  @Get('keys')
  keys(@Items() items: RequestItems) {
    const otherItemKeyX = new ItemKey<string>('x');
    items.set('x', 'string key');
    items.set(SYMBOL_X, 'symbol key');
    items.set(ITEM_KEY_X, 'ItemKey');
    items.set(otherItemKeyX, 'another ItemKey with the same description');
    items.set('ItemKey(x)', 'string that looks like the ItemKey');
    return {
      string: items.get('x'),
      symbol: items.get(SYMBOL_X),
      itemKey: items.get(ITEM_KEY_X),
      otherItemKey: items.get(otherItemKeyX),
      lookalike: items.get('ItemKey(x)'),
      globalSymbol: items.get(Symbol.for('x')) ?? null,
      freshItemKey: items.has(new ItemKey('x')),
      // The middleware set the string key 'isVerified'; an ItemKey with that description is another key.
      isVerifiedByItemKey: items.has(new ItemKey('isVerified')),
      isVerifiedByString: items.get('isVerified'),
    };
  }

  @Get('decorated-keys')
  decoratedKeys(
    @Item('x') stringX: unknown,
    @Item(SYMBOL_X) symbolX: unknown,
    @Item(ITEM_KEY_X) itemKeyX: string | undefined,
    @Item(new ItemKey('x')) otherItemKeyX: unknown,
    @Item(Symbol('x')) otherSymbolX: unknown,
  ) {
    return {
      stringX,
      symbolX,
      itemKeyX,
      otherItemKeyX: otherItemKeyX ?? null,
      otherSymbolX: otherSymbolX ?? null,
    };
  }
}

/** Items used together with session and TempData in one request. */
@Controller('all')
export class AllStateController {
  constructor(
    private readonly sessions: SessionAccessor,
    private readonly tempDataAccessor: TempDataAccessor,
    private readonly items: ItemsAccessor,
  ) {}

  @Post()
  @HttpCode(200)
  write(
    @Session() session: Session,
    @TempData() tempData: TempDataDictionary,
    @Items() items: RequestItems,
    @Item('isVerified') isVerified: unknown,
  ) {
    session.setString('name', 'The Doctor');
    session.setInt32('age', 73);
    tempData.set('Message', `Verified: ${String(isVerified)}`);
    items.set(COUNT, (items.get(COUNT) ?? 0) + 1);
    return { isVerified, count: items.get(COUNT), sessionId: session.id };
  }

  @Get()
  async read(
    @Session() session: Session,
    @TempData('Message') message: unknown,
    @Items() items: RequestItems,
  ) {
    // The same three objects through the singleton accessors.
    const viaAccessor = await this.sessions.load();
    const tempData = await this.tempDataAccessor.load();
    return {
      name: session.getString('name') ?? null,
      age: session.getInt32('age') ?? null,
      message: message ?? null,
      messageStillThere: tempData.peek('Message') ?? null,
      sameSession: viaAccessor === session,
      isVerified: items.get('isVerified'),
      count: items.get(COUNT),
      sameItems: this.items.current === items,
    };
  }
}

/** Boots a real Nest app: SessionModule, the items controllers and the app's own middleware. */
export async function startItemsApp(
  options: SessionModuleOptions = {},
): Promise<{ app: INestApplication; url: string; probe: ItemsProbeService }> {
  @Module({
    imports: [SessionModule.forRoot(options)],
    controllers: [ItemsController, AllStateController],
    providers: [ItemsProbeService, ItemsGuard, ItemsInterceptor, ItemsPipe, ItemsFilter],
  })
  class ItemsTestModule implements NestModule {
    configure(consumer: MiddlewareConsumer): void {
      consumer.apply(VerifyMiddleware).forRoutes(ItemsController, AllStateController);
    }
  }
  const ref = await Test.createTestingModule({ imports: [ItemsTestModule] }).compile();
  const app = createPlatformApp(ref, {
    logger: process.env.TEST_LOGS ? ['error', 'warn', 'log', 'debug'] : false,
  });
  await app.listen(0, '127.0.0.1');
  return { app, url: await app.getUrl(), probe: app.get(ItemsProbeService) };
}
