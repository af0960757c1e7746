import { connect } from 'node:net';

/** One Set-Cookie header, split. */
export interface SetCookie {
  name: string;
  value: string;
  attributes: string[];
}

/** A response as the bytes said it: status, headers (lower-case names, repeats kept), body. */
export interface RawReply {
  status: number;
  headers: Map<string, string[]>;
  setCookies: SetCookie[];
  text: string;
  body: unknown;
}

export interface RawRequest {
  method?: 'GET' | 'POST';
  path: string;
  /** Cookie header lines, each sent as one `Cookie:` line; a Buffer is sent byte for byte (e.g. UTF-8). */
  cookies?: (string | Buffer)[];
  /** Other header lines, sent as given. */
  headers?: [string, string | Buffer][];
  json?: unknown;
}

/**
 * Sends one HTTP/1.1 request over a fresh TCP connection exactly as given: repeated `Cookie` lines stay
 * separate, header bytes are not validated or re-encoded (Node's client would refuse control characters
 * and join repeated cookies). The connection is closed by the request, so the reply is read to its end.
 */
export function rawRequest(url: string, request: RawRequest): Promise<RawReply> {
  const { hostname, port } = new URL(url);
  const body = request.json === undefined ? undefined : Buffer.from(JSON.stringify(request.json), 'utf8');
  const lines: Buffer[] = [
    Buffer.from(`${request.method ?? 'GET'} ${request.path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\n`),
  ];
  const header = (name: string, value: string | Buffer) =>
    lines.push(
      Buffer.concat([
        Buffer.from(`${name}: `, 'latin1'),
        typeof value === 'string' ? Buffer.from(value, 'latin1') : value,
        Buffer.from('\r\n'),
      ]),
    );
  for (const cookie of request.cookies ?? []) header('Cookie', cookie);
  for (const [name, value] of request.headers ?? []) header(name, value);
  if (body) {
    header('Content-Type', 'application/json');
    header('Content-Length', String(body.length));
  }
  header('Connection', 'close');
  lines.push(Buffer.from('\r\n'));
  if (body) lines.push(body);

  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('end', () => {
      try {
        resolve(parseReply(Buffer.concat(chunks)));
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
    socket.end(Buffer.concat(lines));
  });
}

function parseReply(bytes: Buffer): RawReply {
  const split = bytes.indexOf('\r\n\r\n');
  if (split === -1) throw new Error(`incomplete HTTP reply: ${JSON.stringify(bytes.toString('latin1'))}`);
  const [statusLine, ...headerLines] = bytes.subarray(0, split).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
  const headers = new Map<string, string[]>();
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  let rest = bytes.subarray(split + 4);
  if (headers.get('transfer-encoding')?.[0] === 'chunked') rest = dechunk(rest);
  else if (headers.has('content-length')) rest = rest.subarray(0, Number(headers.get('content-length')![0]));
  const text = rest.toString('utf8');
  const json = headers.get('content-type')?.[0]?.includes('json');
  return {
    status,
    headers,
    setCookies: (headers.get('set-cookie') ?? []).map(parseSetCookie),
    text,
    body: json ? JSON.parse(text) : undefined,
  };
}

function dechunk(bytes: Buffer): Buffer {
  const out: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const eol = bytes.indexOf('\r\n', offset);
    const size = parseInt(bytes.subarray(offset, eol).toString('latin1'), 16);
    if (!size) return Buffer.concat(out);
    out.push(bytes.subarray(eol + 2, eol + 2 + size));
    offset = eol + 2 + size + 2;
  }
}

export function parseSetCookie(header: string): SetCookie {
  const [pair, ...attributes] = header.split(';');
  const eq = pair.indexOf('=');
  return {
    name: pair.slice(0, eq).trim(),
    value: pair.slice(eq + 1).trim(),
    attributes: attributes.map((a) => a.trim()),
  };
}

/** True when the Set-Cookie deletes its cookie (empty value, expired in 1970). */
export function isDeletion(cookie: SetCookie): boolean {
  return cookie.value === '' && cookie.attributes.some((a) => /^expires=thu, 01 jan 1970/i.test(a));
}

/** The value a response set (not deleted) for `name`, if any. */
export function setValue(reply: RawReply, name: string): string | undefined {
  return reply.setCookies.find((c) => c.name === name && !isDeletion(c))?.value;
}

/** Runs `run` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, run: (item: T) => Promise<R>) {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await run(items[index]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * A browser over {@link rawRequest}: keeps the cookies responses set (deletions remove them) and sends
 * them back in one Cookie line. `onReply` sees every reply (e.g. to watch cookie values).
 */
export class RawBrowser {
  readonly jar = new Map<string, string>();

  constructor(
    private readonly url: string,
    private readonly onReply: (reply: RawReply) => void = () => undefined,
  ) {}

  /** The Cookie header this browser sends. */
  cookieHeader(): string {
    return [...this.jar].map(([name, value]) => `${name}=${value}`).join('; ');
  }

  get(path: string, headers: [string, string][] = []): Promise<RawReply> {
    return this.send({ path, headers });
  }

  post(path: string, json: unknown = {}, headers: [string, string][] = []): Promise<RawReply> {
    return this.send({ method: 'POST', path, json, headers });
  }

  private async send(request: RawRequest): Promise<RawReply> {
    const cookie = this.cookieHeader();
    const reply = await rawRequest(this.url, { ...request, cookies: cookie ? [cookie] : [] });
    for (const set of reply.setCookies) {
      if (isDeletion(set)) this.jar.delete(set.name);
      else this.jar.set(set.name, set.value);
    }
    this.onReply(reply);
    return reply;
  }
}
