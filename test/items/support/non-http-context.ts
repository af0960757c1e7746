import type { ExecutionContext } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';

/** What `createParamDecorator` stored for one parameter: the factory Nest calls, and its data. */
export interface ParamFactory {
  factory: (data: unknown, context: ExecutionContext) => unknown;
  data: unknown;
}

class DecoratedHandlers {
  handle(_value: unknown): void {}
}

/**
 * Applies a parameter decorator to a handler and returns the factory Nest would call for it,
 * read from the ROUTE_ARGS_METADATA the decorator wrote (the same lookup Nest's router does).
 */
export function paramFactoryOf(decorator: ParameterDecorator): ParamFactory {
  class Host extends DecoratedHandlers {}
  decorator(Host.prototype, 'handle', 0);
  const metadata = Reflect.getMetadata(ROUTE_ARGS_METADATA, Host, 'handle') as Record<string, ParamFactory>;
  const entries = Object.values(metadata);
  if (entries.length !== 1 || typeof entries[0].factory !== 'function') {
    throw new Error(`expected one custom parameter factory, got ${JSON.stringify(Object.keys(metadata))}`);
  }
  return entries[0];
}

/**
 * The ExecutionContext Nest builds for a WebSocket gateway message (`ws`: client, payload) or a
 * microservice handler (`rpc`: payload, transport context).
 */
export function nonHttpContext(type: 'ws' | 'rpc'): ExecutionContext {
  const args =
    type === 'ws'
      ? [
          { id: 'socket-1', data: {} },
          { event: 'message', text: 'hello' },
        ]
      : [{ pattern: 'sum', data: [1, 2] }, { getPattern: () => 'sum' }];
  const context = new ExecutionContextHost(args, DecoratedHandlers, DecoratedHandlers.prototype.handle);
  context.setType(type);
  return context;
}

/** Calls a (sync or async) factory and gives back what it threw or rejected with. */
export async function failureOf(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail, but it succeeded');
}
