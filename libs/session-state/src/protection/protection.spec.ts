import { hkdfSync, randomBytes } from 'node:crypto';
import { AuthenticatedEncryptor } from './authenticated-encryptor.js';
import { CookieSigner } from './cookie-signer.js';
import { KeyRing, type ProtectionPurpose } from './key-ring.js';
import { generateSessionKey, SESSION_KEY_LENGTH } from './session-key.generator.js';
import { estimateEntropyBits } from './secret-strength.js';

const secret = () => randomBytes(32).toString('base64url');

/**
 * A fixed secret for the known-answer tests: 32 random bytes as base64url, as the docs tell apps to generate (the one
 * before, base64 of a phrase, is refused since encodings of typed text count as that text).
 */
const KNOWN_SECRET = 'iVNJ92Ywxxx6MmeD12nwjrOVW1Cx4_qsx4RBsSoHOgk';
/** A session key, and its session cookie signed under [KNOWN_SECRET] by the current release: a literal. */
const KNOWN_SESSION_KEY = 'kaT0Zp3nX2mQ8vRw5yBc1dEf7gHj9LsU';
const KNOWN_SESSION_COOKIE = `${KNOWN_SESSION_KEY}.qOR5pDVC1jpr54GyH13a1gIpSeaJ-mVG0owlkskM670`;
/** 'known-answer TempData' encrypted for the TempData cookie under [KNOWN_SECRET] by the current release. */
const KNOWN_TEMP_DATA_COOKIE = 'AfLmmOIyS4un-VgfoZe6NetKqACbdHPYyFwWYt413swy04NtJZlMafUGr6Jo3ho6URs';
const PURPOSES: readonly ProtectionPurpose[] = ['session-cookie', 'temp-data-cookie'];

/** HKDF-SHA256 as the design specifies it: salt 'nest-session-state/v1', info 'nest-session-state:<purpose>', 32 bytes. */
const hkdf = (secretText: string, purpose: ProtectionPurpose) =>
  Buffer.from(
    hkdfSync(
      'sha256',
      Buffer.from(secretText, 'utf8'),
      Buffer.from('nest-session-state/v1', 'utf8'),
      Buffer.from(`nest-session-state:${purpose}`, 'utf8'),
      32,
    ),
  );

describe('key ring', () => {
  it('rejects missing, short and low-entropy secrets with the option name and a fix', () => {
    expect(() => KeyRing.fromSecrets([])).toThrow(/secrets must be a non-empty array/);
    const fromEnv = 'Hn3xQ8vLr2pYt7sWc0bKm5gFj9aEu4iOz6dRq1yTw8,Zk4mP9sQ2wXr7tLc5vBn8yHd3jFg6aUe1oIq0pRs2T';
    const oneString = (): KeyRing => KeyRing.fromSecrets(fromEnv as unknown as string[]);
    expect(oneString).toThrow(
      /^secrets must be an array of secrets \(newest first\), got one string: .*\.split\(','\)/,
    );
    expect(oneString).not.toThrow(/Hn3x|Zk4m/);
    expect(() => KeyRing.fromSecrets(['short'])).toThrow(/secrets\[0\] is too weak.*randomBytes\(32\)/);
    expect(() => KeyRing.fromSecrets([secret(), 'x'.repeat(64)])).toThrow(/secrets\[1\]/);
    expect(() => KeyRing.fromSecrets(['changemechangemechangemechangeme'])).toThrow(/too weak/);
    // Short is said as short; long but repetitive is said as not random, not as too short.
    expect(() => KeyRing.fromSecrets(['short'])).toThrow(/\(got 5 bytes\)\./);
    expect(() => KeyRing.fromSecrets(['a'.repeat(64)])).toThrow(
      /\(got 64 bytes, but they do not look random: about 0 bits of entropy, 128 needed\)/,
    );
    expect(KeyRing.fromSecrets([secret()]).size).toBe(1);
  });

  it('rejects a secret with whitespace around it (a list split on "," untrimmed), naming it and the fix', () => {
    const [newer, older] = [secret(), secret()];
    const split = `${newer}, ${older}`.split(',');
    expect(() => KeyRing.fromSecrets(split)).toThrow(
      /^secrets\[1\] starts or ends with whitespace: trim .*s\.trim\(\)/,
    );
    expect(() => KeyRing.fromSecrets(split)).not.toThrow(new RegExp(older.slice(0, 8)));
    expect(() => KeyRing.fromSecrets([`${newer}\n`])).toThrow(/^secrets\[0\] starts or ends with whitespace/);
    // Bytes are taken as they are: the way to keep a secret that really holds whitespace.
    expect(KeyRing.fromSecrets([Buffer.from(`${newer}\n`)]).size).toBe(1);
  });

  it('rejects hand-made secrets that have enough distinct characters: repeated, sequential, typed, words, a UUID', () => {
    const handMade = [
      'keyboard cat keyboard cat keyboard cat', // express-session's example, three times
      '1234567890123456789012345678901234567890',
      '0123456789abcdef0123456789abcdef',
      'abcdefghijklmnopqrstuvwxyzABCDEF',
      'qwertyuiopasdfghjklzxcvbnm1234567890',
      'thisismysecretkeyforsessionsdonottell',
      'correct horse battery staple is my secret key ok',
      'ThisIsMySuperSecretPasswordForMyNestApp', // words in camel case
      'My-Nest-App-Session-Secret-For-Production-2026!',
      'Password123!Password123!Password123!',
      Uint8Array.from({ length: 64 }, (_, i) => i),
      '0f1e2d3c-4b5a-4697-8877-665544332211', // a UUID: 122 random bits at most
      // Accepted before (a black-box probe): words with spaces in mixed case, camel-case words, a keyboard walk in
      // both cases, interleaved sequences, and encodings of typed text.
      'The quick brown fox jumps over the lazy dog',
      'MySuperSecretKeyForSessions2024!!',
      'ZXCVBNMASDFGHJKLQWERTYUIOPzxcvbnmasdfghjkl',
      'a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7',
      Buffer.from('password'.repeat(4)).toString('base64url'),
      Buffer.from('fakesecretfakesecretfakesecret12').toString('base64'),
      Buffer.from('this is my secret for the app ok').toString('hex'),
    ];
    for (const weak of handMade)
      expect(() => KeyRing.fromSecrets([weak])).toThrow(/secrets\[0\] is too weak.*do not look random/);
  });

  it('accepts every secret of 32 random bytes, raw or in any usual encoding (60,000 drawn)', () => {
    const encodings: [string, () => string | Uint8Array][] = [
      ['base64url of 32 bytes', () => randomBytes(32).toString('base64url')],
      ['base64 of 32 bytes', () => randomBytes(32).toString('base64')],
      ['hex of 32 bytes', () => randomBytes(32).toString('hex')],
      ['upper-case hex of 32 bytes', () => randomBytes(32).toString('hex').toUpperCase()],
      ['32 raw bytes', () => randomBytes(32)],
    ];
    for (const [name, draw] of encodings) {
      let weakest = Infinity;
      for (let i = 0; i < 60_000 / encodings.length; i++) {
        const secret = draw();
        weakest = Math.min(
          weakest,
          estimateEntropyBits(typeof secret === 'string' ? Buffer.from(secret) : secret),
        );
      }
      expect([name, weakest >= 128]).toEqual([name, true]);
    }
  });

  it('derives different keys per purpose and per secret', () => {
    const ring = KeyRing.fromSecrets([secret(), secret()]);
    const [a1, a2] = ring.keysFor('session-cookie');
    const [b1] = ring.keysFor('temp-data-cookie');
    expect(a1.key.equals(b1.key)).toBe(false);
    expect(a1.key.equals(a2.key)).toBe(false);
    expect(a1.key).toHaveLength(32);
  });
  it('derives each purpose key with HKDF-SHA256 (salt nest-session-state/v1, info nest-session-state:<purpose>): known answers', () => {
    const ring = KeyRing.fromSecrets([KNOWN_SECRET]);
    for (const purpose of PURPOSES) {
      expect(ring.keysFor(purpose)).toHaveLength(1);
      expect(ring.keysFor(purpose)[0].key.toString('hex')).toBe(hkdf(KNOWN_SECRET, purpose).toString('hex'));
    }
    // The same values as literals, so a change to the HKDF parameters above cannot go unnoticed either.
    expect(ring.keysFor('session-cookie')[0].key.toString('hex')).toBe(
      'aca51964190189dc7106ff3c4abde9b5d7048dd28285a3f2b44c45884861da0e',
    );
    expect(ring.keysFor('temp-data-cookie')[0].key.toString('hex')).toBe(
      '0d75ba657f4d0c3798c956114501136005cf32ccc7c978aa60b26ab67f355c27',
    );
    // A secret given as bytes derives the same keys as its UTF-8 text; every secret of a ring is derived alike.
    const bytes = KeyRing.fromSecrets([Buffer.from(KNOWN_SECRET, 'utf8')]);
    for (const purpose of PURPOSES)
      expect(bytes.keysFor(purpose)[0].key).toEqual(hkdf(KNOWN_SECRET, purpose));
    const secrets = [secret(), secret(), secret()];
    const three = KeyRing.fromSecrets(secrets);
    for (const purpose of PURPOSES) {
      expect(three.keysFor(purpose).map(({ index, key }) => [index, key.toString('hex')])).toEqual(
        secrets.map((s, index) => [index, hkdf(s, purpose).toString('hex')]),
      );
    }
  });

  it('cookies protected by the current release still verify and decrypt: a new derivation would sign everybody out', () => {
    const ring = KeyRing.fromSecrets([KNOWN_SECRET]);
    const signer = new CookieSigner(ring, 'session-cookie');
    expect(signer.sign(KNOWN_SESSION_KEY)).toBe(KNOWN_SESSION_COOKIE);
    expect(signer.verify(KNOWN_SESSION_COOKIE)).toEqual({ value: KNOWN_SESSION_KEY, rotated: false });
    const tempData = new AuthenticatedEncryptor(ring, 'temp-data-cookie').decrypt(KNOWN_TEMP_DATA_COOKIE);
    expect(tempData?.value.toString('utf8')).toBe('known-answer TempData');
    expect(tempData?.rotated).toBe(false);
    // Once rotated behind a newer secret, both still work and say so.
    const rotated = KeyRing.fromSecrets([secret(), KNOWN_SECRET]);
    expect(new CookieSigner(rotated, 'session-cookie').verify(KNOWN_SESSION_COOKIE)).toEqual({
      value: KNOWN_SESSION_KEY,
      rotated: true,
    });
    expect(
      new AuthenticatedEncryptor(rotated, 'temp-data-cookie').decrypt(KNOWN_TEMP_DATA_COOKIE),
    ).toMatchObject({ rotated: true });
  });
});

describe('session keys', () => {
  it('are 192 bits from the CSPRNG, base64url, without collisions in 1,000,000', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1_000_000; i++) seen.add(generateSessionKey());
    expect(seen.size).toBe(1_000_000);
    const key = generateSessionKey();
    expect(key).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(key).toHaveLength(SESSION_KEY_LENGTH);
    expect(Buffer.from(key, 'base64url')).toHaveLength(24);
  });
});

describe('cookie signer', () => {
  it('verifies its own signature and rejects any change', () => {
    const signer = new CookieSigner(KeyRing.fromSecrets([secret()]), 'session-cookie');
    const signed = signer.sign(generateSessionKey());
    expect(signer.verify(signed)).toMatchObject({ rotated: false });
    for (let i = 0; i < signed.length; i++) {
      const c = signed[i] === 'A' ? 'B' : 'A';
      const mutated = signed.slice(0, i) + c + signed.slice(i + 1);
      expect(signer.verify(mutated)).toBeUndefined();
    }
    expect(signer.verify(signed.slice(0, -1))).toBeUndefined();
    expect(signer.verify('')).toBeUndefined();
    expect(signer.verify('x'.repeat(10_000))).toBeUndefined();
  });

  it('accepts older secrets and reports rotation; other purposes and rings do not verify', () => {
    const older = secret();
    const oldSigner = new CookieSigner(KeyRing.fromSecrets([older]), 'session-cookie');
    const ring = KeyRing.fromSecrets([secret(), older]);
    const signed = oldSigner.sign('abc');
    expect(new CookieSigner(ring, 'session-cookie').verify(signed)).toEqual({ value: 'abc', rotated: true });
    expect(new CookieSigner(ring, 'temp-data-cookie').verify(signed)).toBeUndefined();
    expect(
      new CookieSigner(KeyRing.fromSecrets([secret()]), 'session-cookie').verify(signed),
    ).toBeUndefined();
  });
});

describe('authenticated encryptor', () => {
  it('round-trips, hides the plaintext, and rejects tampering, truncation and other purposes', () => {
    const ring = KeyRing.fromSecrets([secret()]);
    const enc = new AuthenticatedEncryptor(ring, 'temp-data-cookie');
    const text = enc.encrypt(Buffer.from('secret message'));
    expect(text).not.toContain('secret');
    expect(enc.decrypt(text)?.value.toString()).toBe('secret message');
    expect(enc.encrypt(Buffer.from('x'))).not.toEqual(enc.encrypt(Buffer.from('x'))); // random IV
    const bytes = Buffer.from(text, 'base64url');
    for (let i = 0; i < bytes.length; i++) {
      const copy = Buffer.from(bytes);
      copy[i] ^= 0x01;
      expect(enc.decrypt(copy.toString('base64url'))).toBeUndefined();
    }
    expect(enc.decrypt(text.slice(0, -4))).toBeUndefined();
    expect(enc.decrypt('not base64!')).toBeUndefined();
    expect(new AuthenticatedEncryptor(ring, 'session-cookie').decrypt(text)).toBeUndefined();
  });

  it('decrypts under an older secret and says so', () => {
    const older = secret();
    const text = new AuthenticatedEncryptor(KeyRing.fromSecrets([older]), 'temp-data-cookie').encrypt(
      Buffer.from('m'),
    );
    const ring = KeyRing.fromSecrets([secret(), older]);
    expect(new AuthenticatedEncryptor(ring, 'temp-data-cookie').decrypt(text)).toMatchObject({
      rotated: true,
    });
  });
});

describe('rotation across three secrets', () => {
  it('a session cookie and a TempData value protected by the oldest of three secrets verify (rotated) and re-protect under the newest', () => {
    const [s1, s2, s3] = [secret(), secret(), secret()];
    const ring = KeyRing.fromSecrets([s1, s2, s3]);
    const signer = new CookieSigner(ring, 'session-cookie');
    const enc = new AuthenticatedEncryptor(ring, 'temp-data-cookie');
    const only = (s: string) => KeyRing.fromSecrets([s]);

    const signedBy = (s: string) => new CookieSigner(only(s), 'session-cookie').sign('oldest-key');
    const encryptedBy = (s: string) =>
      new AuthenticatedEncryptor(only(s), 'temp-data-cookie').encrypt(Buffer.from(`under ${s}`));
    for (const [s, rotated] of [
      [s3, true],
      [s2, true],
      [s1, false],
    ] as const) {
      expect(signer.verify(signedBy(s))).toEqual({ value: 'oldest-key', rotated });
      const plain = enc.decrypt(encryptedBy(s));
      expect(plain?.value.toString()).toBe(`under ${s}`);
      expect(plain?.rotated).toBe(rotated);
    }

    // Re-protected, they are under s1 alone.
    const resigned = signer.sign('oldest-key');
    expect(new CookieSigner(only(s1), 'session-cookie').verify(resigned)).toMatchObject({ rotated: false });
    expect(new CookieSigner(only(s3), 'session-cookie').verify(resigned)).toBeUndefined();
    const reencrypted = enc.encrypt(Buffer.from('again'));
    expect(
      new AuthenticatedEncryptor(only(s1), 'temp-data-cookie').decrypt(reencrypted)?.value.toString(),
    ).toBe('again');
    expect(new AuthenticatedEncryptor(only(s3), 'temp-data-cookie').decrypt(reencrypted)).toBeUndefined();

    // A secret outside the ring still fails.
    expect(signer.verify(signedBy(secret()))).toBeUndefined();
    expect(enc.decrypt(encryptedBy(secret()))).toBeUndefined();
  });
});
