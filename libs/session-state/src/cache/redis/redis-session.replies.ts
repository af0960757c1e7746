import type { SessionData } from '../../session/stores/session-store.interface.js';

/**
 * The replies of the session scripts (redis.scripts.ts), packed so the client parses one value per
 * call instead of one per field: ioredis' RESP decoder takes ~0.4 µs per value on Node 24 (its
 * private members compile to WeakMap lookups), so HGETALL's array of 2 per field cost more than the
 * rest of a small session's load. A load answers one bulk string, a commit one integer.
 *
 * Packing moves work into Redis (Lua string building, a few µs per KiB), which every instance
 * shares: a load packs only a small session ({@link PACK_MAX_FIELDS}, {@link PACK_MAX_BYTES}), where
 * it costs Redis ~0.2 µs, and answers HGETALL's array otherwise. The parsers take both shapes.
 */

/** Most fields a load packs (more: HGETALL's array). */
export const PACK_MAX_FIELDS = 32;
/** Most bytes of field names and values a load packs (more: HGETALL's array). */
export const PACK_MAX_BYTES = 512;

/**
 * Lua: `packFields(fields)` turns HGETALL's flat list into one string, each field name and value as
 * its length (4 bytes, big-endian, Redis's `struct` library) then its bytes; nil (the list untouched)
 * for a session past the packing limits. Parsed by {@link parseLoadReply}.
 */
export const PACK_FIELDS_LUA = `
local function packFields(fields)
  if #fields > ${2 * PACK_MAX_FIELDS} then return nil end
  local size = 0
  for i = 1, #fields do size = size + #fields[i] end
  if size > ${PACK_MAX_BYTES} then return nil end
  for i = 1, #fields do fields[i] = struct.pack('>I4', #fields[i]) .. fields[i] end
  return table.concat(fields)
end`;

/** Bytes before the fields in a near-cache load's reply: the time left (ms) as a big-endian double. */
export const TIME_LEFT_BYTES = 8;

/**
 * The session in a load's reply (`sessionLoad`: the packed fields, or HGETALL's array for a large
 * session; nil for no session). Packed values are views into the reply, which holds nothing else.
 * @throws Error when the reply is not what the script answers.
 */
export function parseLoadReply(reply: Buffer | Buffer[] | null, offset = 0): SessionData | undefined {
  if (reply === null || reply === undefined) return undefined;
  if (Array.isArray(reply)) return fieldsOf(reply, reply.length);
  if (!Buffer.isBuffer(reply)) throw malformed();
  const data: SessionData = new Map();
  let at = offset;
  while (at < reply.length) {
    const nameEnd = at + 4 + readLength(reply, at);
    const valueAt = nameEnd + 4;
    const valueEnd = valueAt + readLength(reply, nameEnd);
    if (valueEnd > reply.length) throw malformed();
    data.set(reply.toString('utf8', at + 4, nameEnd), reply.subarray(valueAt, valueEnd));
    at = valueEnd;
  }
  return data;
}

/**
 * A near-cache load's reply (`sessionLoadTracked`): the time left (ms) and the session; undefined for
 * no session.
 */
export function parseTrackedLoadReply(
  reply: Buffer | (Buffer | number)[] | null,
): { readonly data: SessionData; readonly timeLeftMs: number } | undefined {
  if (reply === null || reply === undefined) return undefined;
  if (Array.isArray(reply)) {
    // A large session: HGETALL's array, then the time left.
    if (reply.length % 2 !== 1) throw malformed();
    return {
      timeLeftMs: Number(reply[reply.length - 1]),
      data: fieldsOf(reply as Buffer[], reply.length - 1)!,
    };
  }
  if (!Buffer.isBuffer(reply) || reply.length < TIME_LEFT_BYTES) throw malformed();
  return { timeLeftMs: reply.readDoubleBE(0), data: parseLoadReply(reply, TIME_LEFT_BYTES)! };
}

/** The session in HGETALL's flat list of names and values (its first `length` entries). */
function fieldsOf(list: readonly Buffer[], length: number): SessionData | undefined {
  if (length === 0) return undefined;
  if (length % 2 !== 0) throw malformed();
  const data: SessionData = new Map();
  for (let i = 0; i < length; i += 2) {
    if (!Buffer.isBuffer(list[i]) || !Buffer.isBuffer(list[i + 1])) throw malformed();
    data.set(list[i].toString('utf8'), list[i + 1]);
  }
  return data;
}

/** Lua: a commit's reply, its status (0-7) and its detail in one integer (Redis ms fit 50 bits). */
export const commitReplyLua = (status: number, detail: string) => `${detail} * 8 + ${status}`;

/**
 * A commit's status and detail from its one-integer reply (a string when the app's client has
 * `stringNumbers`).
 */
export function parseCommitReply(reply: unknown): { readonly status: number; readonly detail: number } {
  const packed = Number(reply);
  if (!Number.isSafeInteger(packed) || packed < 0) throw malformed();
  const status = packed % 8;
  return { status, detail: (packed - status) / 8 };
}

function readLength(reply: Buffer, at: number): number {
  if (at + 4 > reply.length) throw malformed();
  return reply.readUInt32BE(at);
}

function malformed(): Error {
  return new Error(
    'Redis answered a session script with a reply nest-session-state cannot read (two versions of the ' +
      'library sharing one ioredis client define the same command names: give each its own client).',
  );
}
