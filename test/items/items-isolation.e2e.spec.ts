import http from 'node:http';
import { randomUUID } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import { httpJson } from './support/http-client.js';
import { startItemsApp, type ItemsProbeService } from './support/items-test.app.js';

const REQUESTS = 1000;

interface LoadBody {
  id: string;
  seen: string[];
  stages: string[];
  sameBag: boolean;
}

describe('request items isolation under load', () => {
  let app: INestApplication;
  let url: string;
  let probe: ItemsProbeService;

  beforeAll(async () => {
    ({ app, url, probe } = await startItemsApp());
  });
  afterAll(() => app.close());

  it(`${REQUESTS} concurrent requests each read back only their own value through awaits, timers, setImmediate and a singleton service`, async () => {
    // One socket per request (no pooling limit), so all of them are in flight at once.
    const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });
    probe.maxInFlight = 0;
    probe.barrier = REQUESTS;
    try {
      const ids = Array.from({ length: REQUESTS }, (_, i) => `req-${i}-${randomUUID()}`);
      const responses = await Promise.all(
        ids.map((id) => httpJson<LoadBody>(url, `/items/load/${id}`, { headers: { 'x-value': id }, agent })),
      );
      const wrong: string[] = [];
      responses.forEach((res, i) => {
        const id = ids[i];
        if (res.status !== 200) {
          wrong.push(`${id}: status ${res.status}`);
          return;
        }
        const { body } = res;
        if (body.id !== id) wrong.push(`${id}: answered for ${body.id}`);
        // param, bag, 6 reads in the service chain, accessor after the chain, the service's own write
        if (body.seen.length !== 10) wrong.push(`${id}: ${body.seen.length} reads`);
        for (const value of body.seen) if (value !== id) wrong.push(`${id}: saw ${value}`);
        for (const stage of ['middleware', 'guard', 'interceptor', 'pipe']) {
          if (!body.stages.includes(`${stage}=${id}`))
            wrong.push(`${id}: ${stage} saw ${body.stages.join(',')}`);
        }
        if (!body.sameBag) wrong.push(`${id}: accessor and @Items() gave different bags`);
      });
      expect(wrong).toEqual([]);
      // The requests really overlapped: all of them were inside the service's async chain at once.
      expect(probe.maxInFlight).toBe(REQUESTS);
    } finally {
      probe.barrier = 0;
      agent.destroy();
    }
  }, 60_000);
});
