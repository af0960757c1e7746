import { createServer, type ServerResponse } from 'node:http';
import type { INestApplication, NestApplicationOptions } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { ExpressAdapter } from '@nestjs/platform-express';
import { FastifyAdapter } from '@nestjs/platform-fastify';

/**
 * The HTTP platform the behaviour suites run on: `express` (default) or `fastify`, from
 * NSS_TEST_PLATFORM. jest.config.js runs the platform-neutral suites once per platform (two projects).
 */
export type TestPlatform = 'express' | 'fastify';
export const TEST_PLATFORM: TestPlatform =
  process.env.NSS_TEST_PLATFORM === 'fastify' ? 'fastify' : 'express';

export interface TestAppOptions extends Pick<NestApplicationOptions, 'logger'> {
  /** Honour X-Forwarded-* from these proxies (Express's `trust proxy`, Fastify's `trustProxy`: same values). */
  trustProxy?: boolean | string;
  /** Node's limit for request headers (large TempData cookies). */
  maxHeaderSize?: number;
}

class SizedExpressAdapter extends ExpressAdapter {
  constructor(private readonly maxHeaderSize: number) {
    super();
  }

  override initHttpServer(options: NestApplicationOptions): void {
    super.initHttpServer(options);
    this.setHttpServer(createServer({ maxHeaderSize: this.maxHeaderSize }, this.getInstance()));
  }
}

/** A Nest application on the test platform. */
export function createPlatformApp(
  ref: TestingModule,
  options: TestAppOptions = {},
  platform: TestPlatform = TEST_PLATFORM,
): INestApplication {
  const { trustProxy, maxHeaderSize, ...nest } = options;
  if (platform === 'fastify') {
    const adapter = new FastifyAdapter({
      trustProxy: trustProxy ?? false,
      ...(maxHeaderSize === undefined ? {} : { http: { maxHeaderSize } }),
    });
    return ref.createNestApplication(adapter, nest);
  }
  const adapter = maxHeaderSize === undefined ? new ExpressAdapter() : new SizedExpressAdapter(maxHeaderSize);
  const app = ref.createNestApplication(adapter, nest);
  if (trustProxy !== undefined)
    adapter.getInstance<{ set(k: string, v: unknown): void }>().set('trust proxy', trustProxy);
  return app;
}

/**
 * What a handler gets with `@Res()`: Express's response, or Fastify's reply. The helpers below
 * do the same thing on both, as an app on either platform writes it.
 */
export type PlatformResponse = object;

interface FastifyReplyLike {
  raw: ServerResponse;
  hijack(): void;
  redirect(url: string, code?: number): unknown;
  code(status: number): FastifyReplyLike;
  send(body?: unknown): unknown;
  header(name: string, value: unknown): FastifyReplyLike;
}
interface ExpressResponseLike extends ServerResponse {
  redirect(status: number, url: string): void;
  send(body?: unknown): unknown;
  status(code: number): ExpressResponseLike;
}

function isFastifyReply(res: PlatformResponse): res is FastifyReplyLike {
  return 'raw' in res && typeof (res as FastifyReplyLike).hijack === 'function';
}

/** `res.redirect(status, url)` / `reply.redirect(url, status)`. */
export function redirectTo(res: PlatformResponse, url: string, status = 302): void {
  if (isFastifyReply(res)) res.redirect(url, status);
  else (res as ExpressResponseLike).redirect(status, url);
}

/** `res.status(s).set(headers).send(body)` / `reply.code(s).headers(headers).send(body)`. */
export function sendBody(
  res: PlatformResponse,
  body: unknown,
  status = 200,
  headers: Record<string, string> = {},
): void {
  if (isFastifyReply(res)) {
    for (const [name, value] of Object.entries(headers)) res.header(name, value);
    res.code(status).send(body);
  } else {
    const express = res as ExpressResponseLike;
    for (const [name, value] of Object.entries(headers)) express.setHeader(name, value);
    express.status(status).send(body);
  }
}

/**
 * Node's response to write by hand (`write`, `end`, `flushHeaders`, `writeHead`): Express's response
 * itself, Fastify's `reply.raw` after `reply.hijack()` (Fastify's way to say the handler answers).
 */
export function rawResponse(res: PlatformResponse): ServerResponse {
  if (isFastifyReply(res)) {
    res.hijack();
    return res.raw;
  }
  return res as ServerResponse;
}
