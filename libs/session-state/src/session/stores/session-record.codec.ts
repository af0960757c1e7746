import { SessionRecordFormatError } from '../../errors/session.errors.js';
import type { SessionData } from './session-store.interface.js';

const VERSION = 1;

/**
 * The whole-record format for stores that keep a session as one value:
 * `version(1) | count(u32) | { keyLength(u32) | key (UTF-8) | valueLength(u32) | value }*`.
 */
export function encodeSessionRecord(data: SessionData): Uint8Array {
  const keys = [...data.keys()].map((key) => Buffer.from(key, 'utf8'));
  let size = 5;
  let i = 0;
  for (const value of data.values()) size += 8 + keys[i++].length + value.byteLength;
  const out = Buffer.allocUnsafe(size);
  out[0] = VERSION;
  out.writeUInt32BE(data.size, 1);
  let offset = 5;
  i = 0;
  for (const value of data.values()) {
    const key = keys[i++];
    out.writeUInt32BE(key.length, offset);
    key.copy(out, offset + 4);
    offset += 4 + key.length;
    out.writeUInt32BE(value.byteLength, offset);
    out.set(value, offset + 4);
    offset += 4 + value.byteLength;
  }
  return out;
}

/** Decodes {@link encodeSessionRecord}'s output; throws {@link SessionRecordFormatError} on anything else. */
export function decodeSessionRecord(bytes: Uint8Array): SessionData {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (why: string): never => {
    throw new SessionRecordFormatError(`Stored session record is malformed: ${why}.`);
  };
  if (buffer.length < 5) fail('too short');
  if (buffer[0] !== VERSION) fail(`unknown version ${buffer[0]}`);
  const count = buffer.readUInt32BE(1);
  // Each entry takes at least 8 bytes: a claimed count beyond that is a lie, not a reason to loop.
  if (count > (buffer.length - 5) / 8) fail('entry count exceeds the record size');
  const data: SessionData = new Map();
  let offset = 5;
  const take = (): Buffer => {
    if (offset + 4 > buffer.length) fail('truncated length');
    const length = buffer.readUInt32BE(offset);
    if (offset + 4 + length > buffer.length) fail('truncated value');
    const slice = buffer.subarray(offset + 4, offset + 4 + length);
    offset += 4 + length;
    return slice;
  };
  for (let i = 0; i < count; i++) {
    const key = take().toString('utf8');
    data.set(key, Uint8Array.from(take()));
  }
  if (offset !== buffer.length) fail('trailing bytes');
  return data;
}
