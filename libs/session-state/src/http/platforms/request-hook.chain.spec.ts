import { jest } from '@jest/globals';
import { enterFirst, type RequestHook } from './request-hook.chain.js';

/** Nest's adapters as far as hooks go: one hook, in `onRequestHook`. */
class OneHookAdapter {
  constructor(private readonly type = 'express') {}
  onRequestHook: RequestHook | undefined;
  setOnRequestHook(hook: RequestHook): void {
    this.onRequestHook = hook;
  }
  getType = () => this.type;
  getInstance = <T>() => ({}) as T;

  /** Runs the installed hook for one request; resolves with what reached `done`. */
  run(request: string[]): Promise<unknown> {
    return new Promise((resolve) => void this.onRequestHook!(request, {}, resolve));
  }
}

const entry: RequestHook = (request, _response, done) => {
  (request as string[]).push('entry');
  done();
};

describe('enterFirst', () => {
  it('installs the entry itself when the app has no hook', () => {
    const adapter = new OneHookAdapter();
    enterFirst(adapter, entry);
    expect(adapter.onRequestHook).toBe(entry);
  });

  it("runs the app's hook after the entry, set before or after, with the adapter as this", async () => {
    for (const when of ['before', 'after']) {
      const adapter = new OneHookAdapter();
      const selves: unknown[] = [];
      const own: RequestHook = function (this: unknown, request, _response, done) {
        selves.push(this);
        (request as string[]).push('app');
        done();
      };
      if (when === 'before') adapter.setOnRequestHook(own);
      enterFirst(adapter, entry);
      if (when === 'after') adapter.setOnRequestHook(own);
      const seen: string[] = [];
      expect(await adapter.run(seen)).toBeUndefined();
      expect(seen).toEqual(['entry', 'app']);
      expect(selves).toEqual([adapter]);
    }
  });

  it("passes the app hook's error, throw or rejection to done, and skips it when the entry failed", async () => {
    const adapter = new OneHookAdapter();
    enterFirst(adapter, entry);
    const failure = new Error('app hook');
    adapter.setOnRequestHook((_q, _s, done) => done(failure));
    expect(await adapter.run([])).toBe(failure);
    adapter.setOnRequestHook(() => {
      throw failure;
    });
    expect(await adapter.run([])).toBe(failure);
    adapter.setOnRequestHook(() => Promise.reject(failure));
    expect(await adapter.run([])).toBe(failure);

    const broken = new OneHookAdapter();
    const entryFailure = new Error('entry');
    enterFirst(broken, (_q, _s, done) => done(entryFailure));
    const app = jest.fn<RequestHook>();
    broken.setOnRequestHook(app);
    expect(await broken.run([])).toBe(entryFailure);
    expect(app).not.toHaveBeenCalled();
  });

  it("an async app hook that resolves continues the request on Fastify (its adapter's rule), not on Express", async () => {
    const fastify = new OneHookAdapter('fastify');
    enterFirst(fastify, entry);
    fastify.setOnRequestHook(async (request) => {
      await Promise.resolve();
      (request as string[]).push('app');
    });
    const seen: string[] = [];
    expect(await fastify.run(seen)).toBeUndefined();
    expect(seen).toEqual(['entry', 'app']);

    const express = new OneHookAdapter('express');
    enterFirst(express, entry);
    const done = jest.fn();
    express.setOnRequestHook(() => Promise.resolve());
    void express.onRequestHook!([], {}, done);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(done).not.toHaveBeenCalled(); // Express's hook continues with done() only

    // A falsy rejection still fails the request, as Nest's adapters make it.
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- what an app may do
    express.setOnRequestHook(() => Promise.reject(false));
    expect(await express.run([])).toEqual(new Error('Request hook failed'));
  });

  it('an app that clears its hook leaves the entry alone', () => {
    const adapter = new OneHookAdapter();
    enterFirst(adapter, entry);
    adapter.setOnRequestHook((_q, _s, done) => done());
    adapter.setOnRequestHook(undefined as unknown as RequestHook);
    expect(adapter.onRequestHook).toBe(entry);
  });
});
