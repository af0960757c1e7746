import { handshakeCookieOf, NO_HANDSHAKE } from './gateway-handshake.js';

describe('handshakeCookieOf: the Cookie header of a WebSocket handshake, from what the adapter hands over', () => {
  const request = (cookie?: string | string[]) => ({ headers: cookie === undefined ? {} : { cookie } });

  it('prefers the request given (the ws adapter passes it to handleConnection)', () => {
    expect(handshakeCookieOf({ request: request('a=client') }, request('a=given'))).toBe('a=given');
  });

  it("reads a socket.io client's own handshake: client.request, then client.handshake", () => {
    expect(handshakeCookieOf({ request: request('a=request'), handshake: request('a=hs') })).toBe(
      'a=request',
    );
    expect(handshakeCookieOf({ handshake: request('a=hs') })).toBe('a=hs');
  });

  it('a handshake without a Cookie header: undefined (no session, not an error)', () => {
    expect(handshakeCookieOf({}, request())).toBeUndefined();
  });

  it('joins a header given as several values, as Node joins Cookie headers', () => {
    expect(handshakeCookieOf({}, request(['a=1', 'b=2']))).toBe('a=1; b=2');
  });

  it('no handshake at all (a ws client, no request): NO_HANDSHAKE, which connect() turns into the error with the fix', () => {
    expect(handshakeCookieOf({})).toBe(NO_HANDSHAKE);
    expect(handshakeCookieOf({ request: null, handshake: 'x' })).toBe(NO_HANDSHAKE);
  });
});
