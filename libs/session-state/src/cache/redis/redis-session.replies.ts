import type { SessionData } from '../../session/stores/session-store.interface.js';

/**
 * The replies of the session scripts (redis.scripts.ts), packed so the client parses one value per
 * call instead of one per field: ioredis' RESP decoder takes ~0.4 µs per value on Node 24 (its
 * private members compile to WeakMap lookups), so an array of 2 per field cost more than the rest of
 * a load. A load answers one bulk string, a commit one integer.
 */

/**
 * Lua: `packFields(fields)` turns HGETALL's flat list into one string, each field name and value as
 * its length (4 bytes, big-endian) then its bytes. Parsed by {@link parseLoadReply}.
 */
export const PACK_FIELDS_LUA = `
local function packFields(fields)
  for i = 1, #fields do fields[i] = struct.pack('>I4', #fields[i]) .. fields[i] end
  return table.concat(fields)
end`;

/** Bytes before the fields in a near-cache load's reply: the time left (ms) as a big-endian double. */
export const TIME_LEFT_BYTES = 8;

/**
 * The session in a load's reply (`sessionLoad`: the packed fields; nil for no session). Values are
 * views into the reply, which holds nothing else.
 * @throws Error when the reply is not what the script answers (a script of another version).
 */
export function parseLoadReply(reply: Buffer | null, offset = 0): SessionData | undefined {
  if (reply === null || reply === undefined) return undefined;
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
  reply: Buffer | null,
): { readonly data: SessionData; readonly timeLeftMs: number } | undefined {
  if (reply === null || reply === undefined) return undefined;
  if (!Buffer.isBuffer(reply) || reply.length < TIME_LEFT_BYTES) throw malformed();
  return { timeLeftMs: reply.readDoubleBE(0), data: parseLoadReply(reply, TIME_LEFT_BYTES)! };
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
    'Redis answered a session script with a reply this version cannot read (is another version of ' +
      'nest-session-state running the same script names?).',
  );
}
