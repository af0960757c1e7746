import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import type { INestApplication } from '@nestjs/common';
import type { CaptureLogger } from '../support/capture-logger.js';
import { badCookieLines, LeakWatch } from './support/leak-watch.js';
import {
  bitFlips,
  hasControlCharacter,
  randomSecret,
  truncations,
  type Mutation,
} from './support/mutations.js';
import { isDeletion, mapLimit, rawRequest, setValue, type RawReply } from './support/raw-http.js';
import {
  SESSION_COOKIE,
  startSecurityApp,
  TEMP_DATA_COOKIE,
  type StateBody,
} from './support/security-app.js';

/** The library's Cookie header limit (http/cookie-header.ts): longer headers are treated as absent. */
const MAX_COOKIE_HEADER = 64 * 1024;
const CONCURRENCY = 8;

/** The cookies a client holds, by name. */
type Jar = Record<string, string>;

const header = (jar: Jar): string =>
  Object.entries(jar)
    .map(([name, value]) => `${name}=${value}`)
    .join('; ');

describe('tamper matrix over HTTP: session and TempData cookies', () => {
  const secret = randomSecret();
  const watch = new LeakWatch().secret(secret);
  let app: INestApplication;
  let url: string;
  let logger: CaptureLogger;
  let startedAt = 0;
  let requests = 0;
  /** A victim and an attacker, each with a session, a small TempData cookie and a chunked one. */
  const victim = { session: '', tempData: '', chunked: {} as Jar };
  const attacker = { session: '', tempData: '', chunked: {} as Jar };

  /** `GET /sec/state` with these Cookie header lines (each sent as its own line). */
  async function state(...cookies: (string | Buffer)[]): Promise<RawReply> {
    requests++;
    for (const line of cookies) if (typeof line === 'string') watch.header(line);
    return watch.reply(await rawRequest(url, { path: '/sec/state', cookies }));
  }

  /**
   * Why `reply` is not a fresh visitor's normal answer (200, empty session, empty TempData, no cookie
   * written other than deletions), or undefined when it is. A request whose header bytes the HTTP parser
   * refuses (control characters) may get Node's 400 instead.
   */
  function notFresh(reply: RawReply, allow400 = false): string | undefined {
    if (allow400 && reply.status === 400) return undefined;
    if (reply.status !== 200) return `status ${reply.status}: ${reply.text.slice(0, 200)}`;
    const body = reply.body as StateBody;
    if (!body.available) return 'session unavailable';
    if (Object.keys(body.session).length > 0) return `session data ${JSON.stringify(body.session)}`;
    if (Object.keys(body.tempData).length > 0) {
      return `TempData ${JSON.stringify(body.tempData).slice(0, 80)}`;
    }
    const written = reply.setCookies.filter((c) => !isDeletion(c));
    if (written.length > 0) return `cookie written: ${written.map((c) => c.name).join(', ')}`;
    return undefined;
  }

  /** Sends each mutation as the cookie `name` (alone) and lists the ones that did not give fresh state. */
  async function failuresOf(mutations: Mutation[], make: (value: string) => string | Buffer) {
    const failures = await mapLimit(mutations, CONCURRENCY, async (mutation) => {
      const controlled = hasControlCharacter(mutation.value);
      const problem = notFresh(await state(make(mutation.value)), controlled);
      return problem && `${mutation.label}: ${problem}`;
    });
    return failures.filter(Boolean);
  }

  async function put(body: { session?: Jar; tempData?: Record<string, unknown> }): Promise<RawReply> {
    requests++;
    return watch.reply(await rawRequest(url, { method: 'POST', path: '/sec/put', json: body }));
  }

  beforeAll(async () => {
    ({ app, url, logger } = await startSecurityApp({ secrets: [secret] }));
    startedAt = Date.now();
    for (const [who, jar] of [
      ['victim', victim],
      ['attacker', attacker],
    ] as const) {
      const small = await put({
        session: { owner: who, card: `${who.toUpperCase()}-DATA-4111` },
        tempData: { Message: `${who} flash` },
      });
      jar.session = setValue(small, SESSION_COOKIE)!;
      jar.tempData = setValue(small, TEMP_DATA_COOKIE)!;
      const big = await put({
        tempData: { Message: `${who} big flash`, Big: randomBytes(4500).toString('base64url') }, // 3 chunks, under the 8 KiB default budget
      });
      jar.chunked = Object.fromEntries(
        big.setCookies.filter((c) => !isDeletion(c)).map((c) => [c.name, c.value]),
      );
    }
  });
  afterAll(() => app.close());

  it('the originals work (every case below fails because of the damage, not the setup)', async () => {
    expect(victim.session).toMatch(/^[A-Za-z0-9_-]{32}\.[A-Za-z0-9_-]{43}$/);
    expect(victim.tempData).toMatch(/^[A-Za-z0-9_-]{60,}$/);
    expect(victim.chunked[TEMP_DATA_COOKIE]).toBe('chunks-3');
    const session = (await state(`${SESSION_COOKIE}=${victim.session}`)).body as StateBody;
    expect(session.session).toEqual({ owner: 'victim', card: 'VICTIM-DATA-4111' });
    const small = (await state(`${TEMP_DATA_COOKIE}=${victim.tempData}`)).body as StateBody;
    expect(small.tempData).toEqual({ Message: 'victim flash' });
    const chunked = (await state(header(victim.chunked))).body as StateBody;
    expect(chunked.tempData).toMatchObject({ Message: 'victim big flash' });
  });

  // RFC 6265 lets a cookie value travel in double quotes, and some clients and proxies re-send ours that way.
  it('values sent in double quotes are read as the value inside them: session, TempData, chunked TempData', async () => {
    const quoted = (jar: Jar): string =>
      Object.entries(jar)
        .map(([name, value]) => `${name}="${value}"`)
        .join('; ');
    const session = await state(`${SESSION_COOKIE}="${victim.session}"`);
    expect((session.body as StateBody).session).toEqual({ owner: 'victim', card: 'VICTIM-DATA-4111' });
    expect(session.setCookies.filter((c) => c.name === SESSION_COOKIE)).toEqual([]);
    const small = (await state(`${TEMP_DATA_COOKIE}="${victim.tempData}"`)).body as StateBody;
    expect(small.tempData).toEqual({ Message: 'victim flash' });
    const chunked = (await state(quoted(victim.chunked))).body as StateBody;
    expect(chunked.tempData).toMatchObject({ Message: 'victim big flash' });
  });

  describe('a bit flip in every character position', () => {
    it('of the session cookie: each gives a fresh session, never a 500', async () => {
      const mutations = bitFlips(victim.session);
      expect(mutations.length).toBeGreaterThan(600);
      expect(await failuresOf(mutations, (v) => `${SESSION_COOKIE}=${v}`)).toEqual([]);
    });

    it('of the TempData cookie: each gives empty TempData, never a 500', async () => {
      const mutations = bitFlips(victim.tempData);
      expect(await failuresOf(mutations, (v) => `${TEMP_DATA_COOKIE}=${v}`)).toEqual([]);
    });

    it('of the chunked TempData cookie: the chunk count, the first and last character of every chunk, and every 100th', async () => {
      const mutations: Mutation[] = bitFlips(victim.chunked[TEMP_DATA_COOKIE]).map((m) => ({
        label: `count ${m.label}`,
        value: header({ ...victim.chunked, [TEMP_DATA_COOKIE]: m.value }),
      }));
      for (const chunk of [1, 2, 3].map((i) => `${TEMP_DATA_COOKIE}C${i}`)) {
        const value = victim.chunked[chunk];
        const ends = new Set([0, value.length - 1]);
        // Every flip of the first and last character; one flip (bit = position mod 6) every 100 characters.
        const flips = bitFlips(value).filter((m) => {
          const [, at, kind, bit] = /position (\d+), (\S+) bit (\d)/.exec(m.label)!;
          if (ends.has(Number(at))) return true;
          return Number(at) % 100 === 0 && kind === 'base64url' && Number(bit) === Number(at) % 6;
        });
        for (const m of flips) {
          mutations.push({
            label: `${chunk} ${m.label}`,
            value: header({ ...victim.chunked, [chunk]: m.value }),
          });
        }
      }
      expect(mutations.length).toBeGreaterThan(100);
      expect(await failuresOf(mutations, (cookieHeader) => cookieHeader)).toEqual([]);
    });
  });

  describe('truncation at every length', () => {
    it('of the session cookie', async () => {
      expect(await failuresOf(truncations(victim.session), (v) => `${SESSION_COOKIE}=${v}`)).toEqual([]);
    });

    it('of the TempData cookie', async () => {
      expect(await failuresOf(truncations(victim.tempData), (v) => `${TEMP_DATA_COOKIE}=${v}`)).toEqual([]);
    });

    it('of the chunked TempData cookie: the last chunk at every 25th length and its last 8, and chunks dropped from the end', async () => {
      const last = `${TEMP_DATA_COOKIE}C3`;
      const value = victim.chunked[last];
      const sampled = truncations(value).filter(
        (m) => m.value.length % 25 === 0 || m.value.length > value.length - 8,
      );
      const mutations: Mutation[] = sampled.map((m) => ({
        label: `${last} ${m.label}`,
        value: header({ ...victim.chunked, [last]: m.value }),
      }));
      for (const keep of [0, 1, 2]) {
        const chunks = Object.fromEntries(
          Array.from({ length: keep }, (_, i) => `${TEMP_DATA_COOKIE}C${i + 1}`).map((n) => [
            n,
            victim.chunked[n],
          ]),
        );
        for (const count of [keep, 3]) {
          mutations.push({
            label: `${keep} chunks kept, chunks-${count}`,
            value: header({ [TEMP_DATA_COOKIE]: `chunks-${count}`, ...chunks }),
          });
        }
      }
      expect(await failuresOf(mutations, (cookieHeader) => cookieHeader)).toEqual([]);
    });
  });

  describe('oversized and over-chunked', () => {
    it('a 100 KB Cookie header reaches the app and is ignored: fresh session, empty TempData', async () => {
      const pad = 'p'.repeat(100 * 1024);
      const cookies = `${SESSION_COOKIE}=${victim.session}; ${TEMP_DATA_COOKIE}=${victim.tempData}; pad=${pad}`;
      expect(cookies.length).toBeGreaterThan(100 * 1024);
      expect(notFresh(await state(cookies))).toBeUndefined();
      // The same bytes over two Cookie lines (Node joins them): still over the limit, still ignored.
      const split = await state(
        `${SESSION_COOKIE}=${victim.session}; a=${pad.slice(60_000)}`,
        `b=${pad.slice(50_000)}`,
      );
      expect(notFresh(split)).toBeUndefined();
    });

    it('the 64 KiB limit is exact: a header of 65,536 characters is read, one of 65,537 is not', async () => {
      const cookies = (length: number) => {
        const head = `${SESSION_COOKIE}=${victim.session}; ${TEMP_DATA_COOKIE}=${victim.tempData}; pad=`;
        return head + 'p'.repeat(length - head.length);
      };
      const within = (await state(cookies(MAX_COOKIE_HEADER))).body as StateBody;
      expect(within.session).toMatchObject({ owner: 'victim' });
      expect(within.tempData).toEqual({ Message: 'victim flash' });
      expect(notFresh(await state(cookies(MAX_COOKIE_HEADER + 1)))).toBeUndefined();
    });

    it('near-miss cookie names filling 50 KB do not hide the real cookie or slow the lookup', async () => {
      const noise = Array.from({ length: 1500 }, (_, i) => `x${SESSION_COOKIE}${i}=${SESSION_COOKIE}=v`).join(
        '; ',
      );
      const cookies = `${noise}; ${SESSION_COOKIE}=${victim.session}`;
      expect(cookies.length).toBeLessThan(MAX_COOKIE_HEADER);
      const started = Date.now();
      const reply = await state(cookies);
      expect(Date.now() - started).toBeLessThan(2000);
      expect((reply.body as StateBody).session).toMatchObject({ owner: 'victim' });
    });

    it('chunks-10000 is rejected before any chunk is read, with or without chunk cookies', async () => {
      const manyChunks = Array.from({ length: 2500 }, (_, i) => `${TEMP_DATA_COOKIE}C${i + 1}=x`).join('; ');
      const cases = [
        `${TEMP_DATA_COOKIE}=chunks-10000`,
        `${TEMP_DATA_COOKIE}=chunks-10000; ${manyChunks}`,
        header({ ...victim.chunked, [TEMP_DATA_COOKIE]: 'chunks-10000' }),
        `${TEMP_DATA_COOKIE}=chunks-${'9'.repeat(400)}`,
        `${SESSION_COOKIE}=chunks-10000`,
        `${SESSION_COOKIE}=chunks-10000; ${TEMP_DATA_COOKIE}=chunks-10000`,
      ];
      for (const cookies of cases) {
        const started = Date.now();
        const reply = await state(cookies);
        expect([cookies.slice(0, 60), notFresh(reply)]).toEqual([cookies.slice(0, 60), undefined]);
        // Chunk cookies the library never wrote (C33 and up) are not each answered with a deletion.
        expect(reply.setCookies.length).toBeLessThanOrEqual(33);
        expect(Date.now() - started).toBeLessThan(2000);
      }
    });
  });

  describe('wrong encodings', () => {
    const base64 = (value: string) => Buffer.from(value, 'base64url').toString('base64');
    const percentEncoded = (value: string) =>
      [...value].map((c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`).join('');

    const encodings = (value: string): Mutation[] => {
      const dot = value.lastIndexOf('.');
      const cases: Mutation[] = [
        {
          label: 'standard base64 with padding',
          value: dot > 0 ? `${value.slice(0, dot)}.${base64(value.slice(dot + 1))}` : base64(value),
        },
        { label: '"+" for "-"', value: `${value.slice(0, 5)}+${value.slice(6)}` },
        { label: '"/" for "_"', value: `${value.slice(0, 5)}/${value.slice(6)}` },
        { label: 'padding appended', value: `${value}==` },
        { label: 'one character appended', value: `${value}A` },
        { label: 'two characters appended', value: `${value}AA` },
        { label: 'three characters appended', value: `${value}AAA` },
        { label: 'a space inside', value: `${value.slice(0, 10)} ${value.slice(10)}` },
        { label: 'an opening quote only', value: `"${value}` },
        { label: 'a closing quote only', value: `${value}"` },
        { label: 'quoted twice', value: `""${value}""` },
        { label: 'percent-encoded', value: percentEncoded(value) },
        { label: 'a dot inside', value: `${value.slice(0, 7)}.${value.slice(8)}` },
        { label: 'doubled', value: value + value },
        { label: 'only dots', value: '.'.repeat(76) },
        { label: 'empty', value: '' },
        { label: '3,000 base64url characters', value: randomBytes(2250).toString('base64url') },
      ];
      return cases;
    };

    it('invalid or non-canonical base64url in the session cookie gives a fresh session', async () => {
      expect(await failuresOf(encodings(victim.session), (v) => `${SESSION_COOKIE}=${v}`)).toEqual([]);
    });

    it('invalid or non-canonical base64url in the TempData cookie gives empty TempData', async () => {
      expect(await failuresOf(encodings(victim.tempData), (v) => `${TEMP_DATA_COOKIE}=${v}`)).toEqual([]);
    });
  });

  describe('non-ASCII bytes in the Cookie header', () => {
    const nonAscii = (name: string, value: string): [string, Buffer][] => {
      const utf8 = (text: string) => Buffer.from(text, 'utf8');
      const ascii = (text: string) => Buffer.from(text, 'latin1');
      const middle = value.length >> 1;
      return [
        ['é appended (UTF-8)', Buffer.concat([ascii(`${name}=${value}`), utf8('é')])],
        ['é prepended (UTF-8)', Buffer.concat([ascii(`${name}=`), utf8('é'), ascii(value)])],
        [
          '€ in the middle (UTF-8)',
          Buffer.concat([
            ascii(`${name}=${value.slice(0, middle)}`),
            utf8('€'),
            ascii(value.slice(middle + 1)),
          ]),
        ],
        [
          'an emoji inside (UTF-8)',
          Buffer.concat([ascii(`${name}=${value.slice(0, 3)}`), utf8('😀'), ascii(value.slice(3))]),
        ],
        ['a no-break space appended (UTF-8)', Buffer.concat([ascii(`${name}=${value}`), utf8('\u00a0')])],
        ['an ideographic space appended (UTF-8)', Buffer.concat([ascii(`${name}=${value}`), utf8('\u3000')])],
        ['a BOM prepended (UTF-8)', Buffer.concat([ascii(`${name}=`), utf8('\ufeff'), ascii(value)])],
        ['a lone 0xA0 byte appended', Buffer.concat([ascii(`${name}=${value}`), Buffer.of(0xa0)])],
        ['a lone 0xA0 byte prepended', Buffer.concat([ascii(`${name}=`), Buffer.of(0xa0), ascii(value)])],
        [
          'a lone 0xFF byte inside',
          Buffer.concat([ascii(`${name}=${value.slice(0, 9)}`), Buffer.of(0xff), ascii(value.slice(9))]),
        ],
        [
          'a non-ASCII cookie name',
          Buffer.concat([ascii(name.slice(0, 4)), utf8('é'), ascii(`${name.slice(5)}=${value}`)]),
        ],
      ];
    };

    it.each([
      ['session', SESSION_COOKIE, () => victim.session],
      ['TempData', TEMP_DATA_COOKIE, () => victim.tempData],
    ])('around or inside a valid %s cookie: treated as absent', async (_label, name, value) => {
      const cases = nonAscii(name, value());
      const failures = await mapLimit(cases, CONCURRENCY, async ([label, bytes]) => {
        const problem = notFresh(await state(bytes));
        return problem && `${label}: ${problem}`;
      });
      expect(failures.filter(Boolean)).toEqual([]);
    });
  });

  describe('duplicate cookie names: the first valid one wins, and no combination reaches the other data', () => {
    const sessionOf = async (...lines: string[]) => ((await state(...lines)).body as StateBody).session;
    const tempDataOf = async (...lines: string[]) => ((await state(...lines)).body as StateBody).tempData;

    it('session: whichever cookie comes first, in one Cookie line or two', async () => {
      const a = `${SESSION_COOKIE}=${attacker.session}`;
      const v = `${SESSION_COOKIE}=${victim.session}`;
      expect(await sessionOf(`${a}; ${v}`)).toMatchObject({ owner: 'attacker' });
      expect(await sessionOf(`${v}; ${a}`)).toMatchObject({ owner: 'victim' });
      expect(await sessionOf(a, v)).toMatchObject({ owner: 'attacker' });
      expect(await sessionOf(`other=1; ${a}; x=2`, v)).toMatchObject({ owner: 'attacker' });
    });

    // A browser sends every cookie of a name it holds, the longest path first: a stale one, or one planted for a
    // sub-path, must not sign the user out of the session the app set (before, the first cookie alone was read).
    it('session: a bad first cookie falls through to the valid one after it, which keeps its session', async () => {
      const v = `${SESSION_COOKIE}=${victim.session}`;
      for (const first of ['garbage', '', attacker.session.slice(0, -1), `${victim.session}x`]) {
        for (const lines of [[`${SESSION_COOKIE}=${first}; ${v}`], [`${SESSION_COOKIE}=${first}`, v]]) {
          const reply = await state(...lines);
          expect((reply.body as StateBody).session).toMatchObject({ owner: 'victim' });
          expect(reply.setCookies.filter((c) => c.name === SESSION_COOKIE)).toEqual([]); // the browser's cookie stays
        }
      }
      // Only bad ones: a fresh session, as for one bad cookie.
      expect(
        notFresh(await state(`${SESSION_COOKIE}=garbage; ${SESSION_COOKIE}=${victim.session}x`)),
      ).toBeUndefined();
    });

    it('session: many malformed cookies of the name in front (planted for deep paths) do not push the valid one out of reach', async () => {
      const v = `${SESSION_COOKIE}=${victim.session}`;
      const planted = (n: number, value: (i: number) => string) =>
        Array.from({ length: n }, (_, i) => `${SESSION_COOKIE}=${value(i)}`).join('; ');
      // Not even shaped as a signed key: no HMAC, not counted (before, the 8th such cookie hid the real one).
      for (const n of [8, 20]) {
        const reply = await state(`${planted(n, (i) => `garbage${i}`)}; ${v}`);
        expect((reply.body as StateBody).session).toMatchObject({ owner: 'victim' });
        expect(reply.setCookies.filter((c) => c.name === SESSION_COOKIE)).toEqual([]);
      }
      // Shaped as signed keys (each costs an HMAC per secret): at most 8 are verified per request.
      // Never the attacker's real cookie, whose last two characters are now and then a digit and 'A' (a CI
      // run found the attacker's session behind one: its own valid cookie among the planted).
      const shaped = (i: number) => {
        const forged = `${attacker.session.slice(0, -2)}${i % 10}A`;
        return forged === attacker.session ? `${attacker.session.slice(0, -2)}${(i + 1) % 10}A` : forged;
      };
      expect(((await state(`${planted(7, shaped)}; ${v}`)).body as StateBody).session).toMatchObject({
        owner: 'victim',
      });
      expect(notFresh(await state(`${planted(8, shaped)}; ${v}`))).toBeUndefined();
    });

    it("session: a key spliced with another session's signature is nobody's session", async () => {
      const [vKey, vTag] = victim.session.split('.');
      const [aKey, aTag] = attacker.session.split('.');
      for (const spliced of [
        `${aKey}.${vTag}`,
        `${vKey}.${aTag}`,
        `${vKey}.${vTag}.${aTag}`,
        `${aKey}${vKey}.${vTag}`,
      ]) {
        expect(notFresh(await state(`${SESSION_COOKIE}=${spliced}`))).toBeUndefined();
      }
    });

    it('TempData: the first valid cookie wins, else the last ones sent; chunks mixed from two cookies decrypt to nothing', async () => {
      const a = `${TEMP_DATA_COOKIE}=${attacker.tempData}`;
      const v = `${TEMP_DATA_COOKIE}=${victim.tempData}`;
      expect(await tempDataOf(`${a}; ${v}`)).toEqual({ Message: 'attacker flash' });
      expect(await tempDataOf(`${v}; ${a}`)).toEqual({ Message: 'victim flash' });
      expect(await tempDataOf(a, v)).toEqual({ Message: 'attacker flash' });
      // A bad one first (stale, or planted for a sub-path): the one after it is read, not deleted.
      for (const first of ['garbage', attacker.tempData.slice(0, -1)]) {
        const reply = await state(`${TEMP_DATA_COOKIE}=${first}; ${v}`);
        expect((reply.body as StateBody).tempData).toEqual({ Message: 'victim flash' });
      }

      const c = (i: number) => `${TEMP_DATA_COOKIE}C${i}`;
      // The attacker's count and first chunk, then the victim's whole chunked cookie: the first occurrences mix two
      // cookies and decrypt to nothing; the last ones are the victim's whole cookie.
      const mixed = `${TEMP_DATA_COOKIE}=chunks-3; ${c(1)}=${attacker.chunked[c(1)]}; ${header(victim.chunked)}`;
      expect(await tempDataOf(mixed)).toMatchObject({ Message: 'victim big flash' });
      // Chunks crossed so that neither the first nor the last occurrences are one cookie: nothing.
      const crossed =
        `${c(1)}=${attacker.chunked[c(1)]}; ${c(2)}=${victim.chunked[c(2)]}; ${header(victim.chunked)}; ` +
        `${c(2)}=${attacker.chunked[c(2)]}`;
      expect(notFresh(await state(crossed))).toBeUndefined();
      const swapped = header({ ...victim.chunked, [c(2)]: attacker.chunked[c(2)] });
      expect(notFresh(await state(swapped))).toBeUndefined();
      // Control: the victim's chunks alone are the victim's TempData.
      expect(await tempDataOf(header(victim.chunked))).toMatchObject({ Message: 'victim big flash' });
    });
  });

  describe('a value replayed under the other cookie name', () => {
    it('TempData values as the session cookie and the session value as TempData are rejected', async () => {
      const c1 = `${TEMP_DATA_COOKIE}C1`;
      const cases: string[] = [
        `${SESSION_COOKIE}=${victim.tempData}`,
        `${SESSION_COOKIE}=${victim.chunked[c1]}`,
        `${SESSION_COOKIE}=chunks-3; ${SESSION_COOKIE}C1=${victim.chunked[c1]}`,
        `${TEMP_DATA_COOKIE}=${victim.session}`,
        `${TEMP_DATA_COOKIE}=chunks-1; ${c1}=${victim.session}`,
        `${SESSION_COOKIE}=${victim.tempData}; ${TEMP_DATA_COOKIE}=${victim.session}`,
      ];
      const failures = await mapLimit(cases, CONCURRENCY, async (cookies) => {
        const problem = notFresh(await state(cookies));
        return problem && `${cookies.slice(0, 40)}: ${problem}`;
      });
      expect(failures.filter(Boolean)).toEqual([]);
    });
  });

  describe('logs', () => {
    it('stay bounded: at most one line per kind of bad cookie (session, TempData) per 10 s over the whole matrix', () => {
      const elapsed = Date.now() - startedAt;
      const lines = badCookieLines(logger);
      expect(requests).toBeGreaterThan(1500);
      expect(lines.length).toBeGreaterThanOrEqual(1); // the capture works: bad cookies are logged
      // Each kind has its own 10 s window (RateLimitedLog): one flood never hides the other.
      for (const kind of [/session cookie could not be unprotected/, /TempData cookie was ignored/]) {
        const ofKind = lines.filter((l) => kind.test(l.message));
        expect(ofKind.length).toBeLessThanOrEqual(1 + Math.ceil(elapsed / 10_000));
      }
      expect(lines.every((l) => l.level === 'debug')).toBe(true);
    });

    it('never carry a secret, a session key or a cookie value (sent or received)', () => {
      expect(watch.size).toBeGreaterThan(1000);
      expect(logger.lines.length).toBeGreaterThan(0);
      expect(watch.findLeak(logger)).toBeUndefined();
    });
  });
});
