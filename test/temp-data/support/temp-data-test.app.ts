import {
  BadRequestException,
  Body,
  Controller,
  Get,
  HttpCode,
  Injectable,
  Module,
  Param,
  Post,
  Redirect,
  Res,
  type INestApplication,
  type LoggerService,
  type LogLevel,
  type Provider,
  type Type,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  Session,
  SessionModule,
  TempData,
  TempDataAccessor,
  type SessionModuleOptions,
  type TempDataDictionary,
} from 'nest-session-state';
import {
  createPlatformApp,
  rawResponse,
  redirectTo,
  type PlatformResponse,
} from '../../support/platform/test-platform.js';

/** Largest request/response header block the test server and client accept (Node's default is 16 KiB). */
export const MAX_HEADER_SIZE = 64 * 1024;

/** One step of `POST /td/ops`, run in order against the request's TempData. */
export type TempDataOp =
  | { op: 'get' | 'peek' | 'has' | 'remove'; key: string }
  | { op: 'set'; key: string; value: unknown }
  | { op: 'keep'; key?: string }
  | { op: 'keys' | 'entries' | 'size' | 'clear' | 'throw' };

/**
 * A JSON description of a value that keeps what JSON loses (a Date and a date-looking string look the
 * same in JSON), so tests can assert the types TempData gave back.
 */
export function describeValue(value: unknown): unknown {
  if (value === undefined) return { type: 'undefined' };
  if (value === null) return { type: 'null' };
  if (value instanceof Date) return { type: 'Date', iso: value.toISOString() };
  if (Array.isArray(value)) return { type: 'array', items: value.map(describeValue) };
  if (typeof value === 'object') {
    return {
      type: 'object',
      prototype: Object.getPrototypeOf(value) === Object.prototype ? 'Object' : 'other',
      entries: Object.fromEntries(Object.entries(value).map(([k, v]) => [k, describeValue(v)])),
    };
  }
  // JSON has no NaN, Infinity or -0: describe those numbers as text.
  if (typeof value === 'number' && (!Number.isFinite(value) || Object.is(value, -0))) {
    return { type: 'number', text: Object.is(value, -0) ? '-0' : String(value) };
  }
  return { type: typeof value, value };
}

/** A singleton service that reaches TempData through the injectable accessor (no REQUEST scope). */
@Injectable()
export class FlashService {
  constructor(private readonly tempData: TempDataAccessor) {}

  async flash(message: string): Promise<void> {
    (await this.tempData.load()).set('Message', message);
  }

  async take(): Promise<unknown> {
    return (await this.tempData.load()).get('Message');
  }

  /** `current` without `load()`: enough for the cookie provider. */
  peekCurrent(): unknown {
    return this.tempData.current.peek('Message');
  }
}

/** Runs `ops` in order against `tempData`, returning each step's result. */
function runOps(tempData: TempDataDictionary, ops: TempDataOp[]): unknown[] {
  return ops.map((step) => {
    switch (step.op) {
      case 'get':
        return tempData.get(step.key) ?? null;
      case 'peek':
        return tempData.peek(step.key) ?? null;
      case 'has':
        return tempData.has(step.key);
      case 'remove':
        return tempData.remove(step.key);
      case 'set':
        tempData.set(step.key, step.value);
        return null;
      case 'keep':
        tempData.keep(step.key);
        return null;
      case 'keys':
        return tempData.keys();
      case 'entries':
        return Object.fromEntries(tempData.entries());
      case 'size':
        return tempData.size;
      case 'clear':
        tempData.clear();
        return null;
      case 'throw':
        throw new BadRequestException('handler failed after using TempData');
    }
  });
}

/** Routes that drive the TempData dictionary over HTTP. */
@Controller('td')
export class TempDataTestController {
  constructor(private readonly flash: FlashService) {}

  @Get('untouched')
  untouched() {
    return { ok: true };
  }

  /** Receives the dictionary but never uses it. */
  @Get('injected')
  injected(@TempData() _tempData: TempDataDictionary) {
    return { ok: true };
  }

  @Post('ops')
  @HttpCode(200)
  ops(@TempData() tempData: TempDataDictionary, @Body() body: { ops: TempDataOp[] }) {
    return { results: runOps(tempData, body.ops) };
  }

  /** `before`, then the session's `abandon()` or `clear()`, then `after` (the session provider's TempData). */
  @Post('ops-around-session/:end')
  @HttpCode(200)
  opsAroundSession(
    @TempData() tempData: TempDataDictionary,
    @Session() session: Session,
    @Param('end') end: 'abandon' | 'clear',
    @Body() body: { before: TempDataOp[]; after: TempDataOp[] },
  ) {
    const before = runOps(tempData, body.before);
    if (end === 'abandon') session.abandon();
    else session.clear();
    return { results: [...before, ...runOps(tempData, body.after)] };
  }

  /** `@TempData('key')` is a read. */
  @Get('message')
  message(@TempData('Message') message: unknown) {
    return { message: message ?? null };
  }

  /** `@TempData('key')` ignores case, like the dictionary. */
  @Get('message-lower')
  messageLower(@TempData('message') message: unknown) {
    return { message: message ?? null };
  }

  /** Stores values of every supported type. */
  @Post('types')
  @HttpCode(200)
  setTypes(@TempData() tempData: TempDataDictionary) {
    for (const [key, value] of Object.entries(typedSamples())) tempData.set(key, value);
    return { keys: tempData.keys() };
  }

  /** Describes every value without consuming any. */
  @Get('types')
  getTypes(@TempData() tempData: TempDataDictionary) {
    return Object.fromEntries(tempData.keys().map((key) => [key, describeValue(tempData.peek(key))]));
  }

  /** Sets `Before` (valid), then tries to store an unsupported value under the kind's key. */
  @Post('unsupported/:kind')
  @HttpCode(200)
  unsupported(@TempData() tempData: TempDataDictionary, @Param('kind') kind: string) {
    tempData.set('Before', 'kept');
    const [key, value] = unsupportedSample(kind);
    try {
      tempData.set(key, value);
      return { error: null };
    } catch (error) {
      return {
        error: (error as Error).name,
        message: (error as Error).message,
        has: tempData.has(key),
        keys: tempData.keys(),
      };
    }
  }

  @Post('service/flash')
  @HttpCode(200)
  async serviceFlash(@Body() body: { message: string }) {
    await this.flash.flash(body.message);
    return { ok: true };
  }

  @Get('service/take')
  async serviceTake() {
    return { message: (await this.flash.take()) ?? null };
  }

  /** Waits before reading, so concurrent requests overlap inside the singleton service. */
  @Get('service/slow-take/:ms')
  async serviceSlowTake(@Param('ms') ms: string) {
    await new Promise((resolve) => setTimeout(resolve, Number(ms)));
    return { message: (await this.flash.take()) ?? null };
  }

  /**
   * Sets TempData after the body started going out: too late, refused with TempDataResponseStartedError.
   * (In the same turn as the first write it would still be saved: the save runs a microtask later.)
   */
  @Post('late')
  async late(@TempData() tempData: TempDataDictionary, @Res() reply: PlatformResponse) {
    const res = rawResponse(reply);
    res.statusCode = 201;
    res.write('started;');
    await new Promise((resolve) => setImmediate(resolve));
    try {
      tempData.set('Message', 'too late');
      res.end('no error');
    } catch (error) {
      res.end((error as Error).name);
    }
  }

  @Get('service/peek-current')
  servicePeekCurrent() {
    return { message: this.flash.peekCurrent() ?? null };
  }
}

/** The post/redirect/get flow of the design's sample app. */
@Controller('customers')
export class CustomersTestController {
  @Post('create')
  @Redirect('/customers', 302)
  create(@Body('name') name: string, @TempData() tempData: TempDataDictionary) {
    tempData.set('Message', `Customer ${name} added`);
  }

  @Post('create-res')
  createWithRes(
    @Body('name') name: string,
    @TempData() tempData: TempDataDictionary,
    @Res() res: PlatformResponse,
  ) {
    tempData.set('Message', `Customer ${name} added`);
    redirectTo(res, '/customers');
  }

  @Get()
  index(@TempData('Message') message: unknown) {
    return { message: message ?? null };
  }

  @Get('peek')
  peek(@TempData() tempData: TempDataDictionary) {
    return { message: tempData.peek('Message') ?? null };
  }

  @Get('keep')
  keep(@TempData() tempData: TempDataDictionary) {
    const message = tempData.get('Message');
    tempData.keep('Message');
    return { message: message ?? null };
  }
}

/** A look into the session, to see where the session provider keeps TempData. */
@Controller('session')
export class SessionPeekController {
  @Get('keys')
  keys(@Session() session: Session) {
    return { keys: session.keys };
  }

  @Get('raw/:key')
  raw(@Session() session: Session, @Param('key') key: string) {
    return { raw: session.getString(key) ?? null };
  }

  @Get('counter')
  counter(@Session() session: Session) {
    const count = (session.getInt32('count') ?? 0) + 1;
    session.setInt32('count', count);
    return { count };
  }
}

/** The typed values `POST /td/types` stores. */
export function typedSamples(): Record<string, unknown> {
  return {
    When: new Date('2024-02-29T12:34:56.789Z'),
    DateLike: '2024-02-29T12:34:56.789Z',
    Text: 'Customer Ada added',
    Count: 42,
    Ratio: -1.5,
    Special: [NaN, Infinity, -Infinity, -0, 0],
    Flag: true,
    Off: false,
    Nothing: null,
    List: [1, 'two', false, null, new Date(0), { deep: ['2020-01-01'] }],
    Nested: {
      customer: { name: 'Ada', joined: new Date('1999-12-31T23:59:59.000Z'), tags: ['a', 'b'] },
      $d: 'a user key that looks like a tag',
      empty: {},
    },
  };
}

class Customer {
  constructor(readonly name: string) {}
}

function unsupportedSample(kind: string): [string, unknown] {
  switch (kind) {
    case 'function':
      return ['Callback', () => 1];
    case 'bigint':
      return ['Total', BigInt(1)];
    case 'symbol':
      return ['Marker', Symbol('x')];
    case 'map':
      return ['Lookup', new Map([['a', 1]])];
    case 'class':
      return ['Customer', new Customer('Ada')];
    case 'nested': {
      return ['Payload', { items: [1, new Set([2])] }];
    }
    case 'cycle': {
      const node: Record<string, unknown> = { name: 'loop' };
      node.self = node;
      return ['Graph', node];
    }
    default:
      throw new BadRequestException(`unknown kind ${kind}`);
  }
}

/** Express with a larger header limit, so a browser-sized (20 KB+) chunked cookie reaches the app. */
/** A logger that records what the library logs (Nest's Logger routes to it). */
export class RecordingLogger implements LoggerService {
  readonly lines: { level: string; message: string; context?: string }[] = [];
  log(message: unknown, context?: string) {
    this.lines.push({ level: 'log', message: String(message), context });
  }
  error(message: unknown, _stack?: string, context?: string) {
    this.lines.push({ level: 'error', message: String(message), context });
  }
  warn(message: unknown, context?: string) {
    this.lines.push({ level: 'warn', message: String(message), context });
  }
  debug(message: unknown, context?: string) {
    this.lines.push({ level: 'debug', message: String(message), context });
  }
  verbose(message: unknown, context?: string) {
    this.lines.push({ level: 'verbose', message: String(message), context });
  }
}

export interface TempDataTestApp {
  app: INestApplication;
  url: string;
}

/**
 * Boots a Nest app with SessionModule and the TempData test controllers on a free port. The HTTP
 * server accepts headers up to {@link MAX_HEADER_SIZE}.
 */
export async function startTempDataApp(
  options: SessionModuleOptions = {},
  extra: {
    trustProxy?: boolean;
    logger?: LoggerService;
    controllers?: Type[];
    providers?: Provider[];
  } = {},
): Promise<TempDataTestApp> {
  @Module({
    imports: [SessionModule.forRoot(options)],
    controllers: [
      TempDataTestController,
      CustomersTestController,
      SessionPeekController,
      ...(extra.controllers ?? []),
    ],
    providers: [FlashService, ...(extra.providers ?? [])],
  })
  class TempDataTestModule {}
  const ref = await Test.createTestingModule({ imports: [TempDataTestModule] }).compile();
  const levels: LogLevel[] = ['error', 'warn', 'log', 'debug'];
  const logger = extra.logger ?? (process.env.TEST_LOGS ? levels : false);
  const app = createPlatformApp(ref, {
    logger,
    maxHeaderSize: MAX_HEADER_SIZE,
    trustProxy: extra.trustProxy,
  });
  await app.listen(0, '127.0.0.1');
  return { app, url: await app.getUrl() };
}
