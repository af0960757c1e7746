import 'reflect-metadata';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Controller, Get, Module, type INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { Session, SessionAccessor, SessionModule, type DistributedSession } from 'nest-session-state';
import { ExpressAdapter } from '@nestjs/platform-express';
import express from 'express';
import { stateOfRequest } from '../../libs/session-state/src/request/request-context.js';
import { cookiePair } from '../support/cookie-jar.js';
import { createPlatformApp } from '../support/platform/test-platform.js';

const COOKIE = '.Nest.Session';

@Controller('entry')
class CounterController {
  @Get('count')
  count(@Session() session: DistributedSession): { n: number } {
    const n = (session.getInt32('n') ?? 0) + 1;
    session.setInt32('n', n);
    return { n };
  }
}

@Module({ imports: [SessionModule.forRoot()], controllers: [CounterController] })
class EntryAppModule {}

type ExpressHandle = (req: IncomingMessage, res: ServerResponse, next?: unknown) => void;

/** Two requests on one cookie through `server`: the counter reaches 2. */
async function countsTwice(server: Server): Promise<void> {
  const first = await request(server).get('/entry/count').expect(200, { n: 1 });
  const cookie = cookiePair(first, COOKIE);
  await request(server).get('/entry/count').set('Cookie', cookie).expect(200, { n: 2 });
}

describe('Express entry (the request state is attached before Express moves the request)', () => {
  let app: INestApplication;
  let handled: boolean[];

  beforeEach(async () => {
    const ref = await Test.createTestingModule({ imports: [EntryAppModule] }).compile();
    app = createPlatformApp(ref, {}, 'express');
    await app.init();
    // What Express's app.handle sees when the Node server hands it a request (its prototype move comes next).
    const express = app.getHttpAdapter().getInstance() as { handle: ExpressHandle };
    const handle = express.handle;
    handled = [];
    express.handle = function (this: unknown, req: IncomingMessage, res: ServerResponse, next?: unknown) {
      handled.push(stateOfRequest(req) !== undefined);
      return handle.call(this, req, res, next);
    };
  });

  afterEach(async () => {
    await app.close();
  });

  it("attaches the state from the Node server's request event, before Express handles the request", async () => {
    await countsTwice(app.getHttpServer() as Server);
    expect(handled).toEqual([true, true]);
  });

  it("serves an Express app driven by another server than Nest's, entered through Nest's request hook alone", async () => {
    const other = createServer(app.getHttpAdapter().getInstance());
    try {
      await countsTwice(other);
      expect(handled).toEqual([false, false]);
    } finally {
      other.close();
    }
  });
});

describe('a route on the Express instance ahead of Nest (registered before new ExpressAdapter(it))', () => {
  it('gets SessionNotConfiguredError from the accessor, whose message names that order and the fix', async () => {
    const own = express();
    const ref = await Test.createTestingModule({ imports: [EntryAppModule] }).compile();
    own.get('/early', (_req, res) => {
      ref
        .get(SessionAccessor)
        .load()
        .then(
          () => res.json({ loaded: true }),
          (error: Error) => res.status(500).json({ name: error.name, message: error.message }),
        );
    });
    const app = ref.createNestApplication(new ExpressAdapter(own), { logger: false });
    await app.init();
    try {
      const { body } = await request(app.getHttpServer()).get('/early').expect(500);
      expect(body).toMatchObject({ name: 'SessionNotConfiguredError' });
      expect((body as { message: string }).message).toContain(
        'a route or middleware registered on the Express or Fastify instance ahead of Nest',
      );
      await countsTwice(app.getHttpServer() as Server); // Nest's own routes are served as ever
    } finally {
      await app.close();
    }
  });
});
