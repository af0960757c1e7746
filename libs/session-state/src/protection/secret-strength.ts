/** The shortest secret accepted: 256 bits of key material for HKDF. */
export const MIN_SECRET_BYTES = 32;

/** Keyboard rows: a step to a neighbour in one of them is typed, not chosen (`qwerty`, `asdf`, `1234`). */
const KEYBOARD_ROWS = ['`1234567890-=', 'qwertyuiop[]\\', "asdfghjkl;'", 'zxcvbnm,./'];
/** The commonest letter pairs of English text: a secret made of them reads as words. */
const ENGLISH_BIGRAMS =
  'th he in er an re on at en nd ti es or te of ed is it al ar st to nt ng se ha as ou io le ve co me de ' +
  'hi ri ro ic ne ea ra ce li ch ll be ma si om ur';

const neighbours = new Set<number>();
for (const row of KEYBOARD_ROWS) {
  for (let i = 1; i < row.length; i++) {
    neighbours.add(pair(row.charCodeAt(i - 1), row.charCodeAt(i)));
    neighbours.add(pair(row.charCodeAt(i), row.charCodeAt(i - 1)));
  }
}
const bigrams = new Set(ENGLISH_BIGRAMS.split(' ').map((b) => pair(b.charCodeAt(0), b.charCodeAt(1))));
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A conservative estimate of the entropy in a secret, in bits. Each byte counts the Shannon entropy of the
 * secret's byte distribution, except a byte that is predictable from the ones before it, which counts at
 * most 1 bit: one that repeats an earlier three-byte run (`keyboard cat keyboard cat`), continues a step
 * (`abcdef`, `0123`, `aaaa`, bytes 0, 1, 2, ...) or two interleaved ones (`a1b2c3`), is a space (`correct horse
 * battery staple`), or, in text whose letters are all of one case, read as words, hold a space or walk the
 * keyboard, a keyboard neighbour (`qwerty`, `asdf`) or a common English letter pair (`thisismysecret`,
 * `ThisIsMySecret`). Hex or base64 of printable text counts as that text. A UUID counts its
 * 122 random bits at most. 32 random bytes pass, raw or in hex, base64 or base64url (>= 128 bits; shorter random
 * secrets, 24 bytes as 32 base64 characters, are refused about once in twenty thousand).
 */
export function estimateEntropyBits(bytes: Uint8Array): number {
  const direct = estimateOf(bytes);
  // An encoding adds no entropy: hex or base64 of typed text (`cGFzc3dvcmQ...`) is as weak as the text.
  const decoded = decodedText(bytes);
  return decoded === undefined ? direct : Math.min(direct, estimateOf(decoded));
}

/**
 * The bytes `bytes` encode when they are hex or base64(url) text of printable text (16 bytes or more), else
 * undefined. Random bytes decode to printable text about once in 10^14 draws.
 */
function decodedText(bytes: Uint8Array): Uint8Array | undefined {
  const text = Buffer.from(bytes).toString('latin1');
  let decoded: Buffer | undefined;
  if (/^(?:[0-9a-f]{2})+$/.test(text) || /^(?:[0-9A-F]{2})+$/.test(text)) decoded = Buffer.from(text, 'hex');
  else if (/^[A-Za-z0-9+/]+={0,2}$/.test(text) || /^[A-Za-z0-9_-]+$/.test(text))
    decoded = Buffer.from(text, 'base64');
  if (decoded === undefined || decoded.length < 16) return undefined;
  return decoded.every((byte) => byte >= 0x20 && byte <= 0x7e) ? decoded : undefined;
}

function estimateOf(bytes: Uint8Array): number {
  if (bytes.length === 0) return 0;
  const perByte = shannonBitsPerByte(bytes);
  const predictableBits = Math.min(1, perByte);
  const trigrams = new Set<number>();
  const text = Buffer.from(bytes).toString('latin1');
  // Text: spaces separate words. Words and keyboard runs are typed in one case, or read as words in any case
  // (`ThisIsMySecret`); random encodings mix cases at random, and raw bytes are not text at all.
  const printable = /^[\x20-\x7e]*$/.test(text);
  // Spaces never appear in an encoding of random bytes: text with them is written by hand, whatever its case.
  const typed =
    printable &&
    (!/[a-z]/.test(text) ||
      !/[A-Z]/.test(text) ||
      text.includes(' ') ||
      readsAsWords(bytes) ||
      followsKeys(bytes));
  let bits = perByte;
  for (let i = 1; i < bytes.length; i++) {
    let repeated = false;
    if (i >= 2) {
      const trigram = (bytes[i - 2] << 16) | (bytes[i - 1] << 8) | bytes[i];
      repeated = trigrams.has(trigram);
      trigrams.add(trigram);
    }
    bits += repeated || predictable(bytes, i, printable, typed) ? predictableBits : perByte;
  }
  return UUID.test(text) ? Math.min(bits, 122) : bits;
}

function shannonBitsPerByte(bytes: Uint8Array): number {
  const counts = new Map<number, number>();
  for (const byte of bytes) counts.set(byte, (counts.get(byte) ?? 0) + 1);
  let perByte = 0;
  for (const count of counts.values()) {
    const p = count / bytes.length;
    perByte -= p * Math.log2(p);
  }
  // Miller-Madow: a few dozen bytes under-read the distribution they were drawn from (32 random bytes read
  // as ~4.9 bits each). Nothing for a secret of one repeated byte.
  return counts.size > 1 ? perByte + (counts.size - 1) / (2 * bytes.length * Math.LN2) : perByte;
}

/**
 * Whether byte `i` follows from the bytes before it in one of the ways people write secrets by hand: spaces
 * only in `printable` text; keyboard neighbours, English pairs and `-`, `_`, `.` between words only in `typed`
 * text (its letters in one case, or reading as words).
 */
function predictable(bytes: Uint8Array, i: number, printable: boolean, typed: boolean): boolean {
  const before = bytes[i - 1];
  const byte = bytes[i];
  if (printable && (byte === 0x20 || before === 0x20)) return true;
  if (i >= 2 && byte - before === before - bytes[i - 2]) return true;
  // Two sequences interleaved (`a1b2c3d4`, `a-b-c-`).
  if (i >= 4 && byte - bytes[i - 2] === bytes[i - 2] - bytes[i - 4]) return true;
  if (!typed) return false;
  // Words joined by `-`, `_` or `.` instead of spaces (`My-Session-Secret`).
  if (isSeparator(byte) || isSeparator(before)) return true;
  const key = pair(lower(before), lower(byte));
  return neighbours.has(key) || bigrams.has(key);
}

/**
 * Mixed-case text that reads as words: 28% or more of its letter pairs are common English pairs (random
 * letters: about 7 in 100), over 12 pairs at least, and capitals only start words.
 */
function readsAsWords(bytes: Uint8Array): boolean {
  let pairs = 0;
  let common = 0;
  let capitals = 0;
  for (let i = 1; i < bytes.length; i++) {
    if (isUpper(bytes[i - 1]) && isUpper(bytes[i])) capitals++;
    const a = lower(bytes[i - 1]);
    const b = lower(bytes[i]);
    if (a < 0x61 || a > 0x7a || b < 0x61 || b > 0x7a) continue;
    pairs++;
    if (bigrams.has(pair(a, b))) common++;
  }
  // Words start with one capital (`ThisIsMy`, `MySuperSecretKey`); random letters put two together about one pair
  // in six, and make a common pair about one in fourteen.
  return pairs >= 12 && common * 100 >= pairs * 28 && capitals <= 1;
}

/** Text that walks the keyboard in either case (`ZXCVBNMasdfgh`): 35% or more of its pairs are neighbours. */
function followsKeys(bytes: Uint8Array): boolean {
  let steps = 0;
  for (let i = 1; i < bytes.length; i++)
    if (neighbours.has(pair(lower(bytes[i - 1]), lower(bytes[i])))) steps++;
  return bytes.length > 12 && steps * 100 >= (bytes.length - 1) * 35;
}

function isUpper(byte: number): boolean {
  return byte >= 0x41 && byte <= 0x5a;
}

function isSeparator(byte: number): boolean {
  return byte === 0x2d || byte === 0x5f || byte === 0x2e;
}

function lower(byte: number): number {
  return byte >= 0x41 && byte <= 0x5a ? byte + 0x20 : byte;
}

function pair(a: number, b: number): number {
  return (a << 8) | b;
}
