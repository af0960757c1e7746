import { randomBytes } from 'node:crypto';
import { AuthenticatedEncryptor } from './authenticated-encryptor.js';
import { CookieSigner } from './cookie-signer.js';
import { KeyRing } from './key-ring.js';
import { generateSessionKey, SESSION_KEY_LENGTH } from './session-key.generator.js';

const secret = () => randomBytes(32).toString('base64url');

describe('key ring', () => {
  it('rejects missing, short and low-entropy secrets with the option name and a fix', () => {
    expect(() => KeyRing.fromSecrets([])).toThrow(/secrets must be a non-empty array/);
    expect(() => KeyRing.fromSecrets(['short'])).toThrow(/secrets\[0\] is too weak.*randomBytes\(32\)/);
    expect(() => KeyRing.fromSecrets([secret(), 'x'.repeat(64)])).toThrow(/secrets\[1\]/);
    expect(() => KeyRing.fromSecrets(['changemechangemechangemechangeme'])).toThrow(/too weak/);
    expect(KeyRing.fromSecrets([secret()]).size).toBe(1);
  });

  it('derives different keys per purpose and per secret', () => {
    const ring = KeyRing.fromSecrets([secret(), secret()]);
    const [a1, a2] = ring.keysFor('session-cookie');
    const [b1] = ring.keysFor('temp-data-cookie');
    expect(a1.key.equals(b1.key)).toBe(false);
    expect(a1.key.equals(a2.key)).toBe(false);
    expect(a1.key).toHaveLength(32);
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
