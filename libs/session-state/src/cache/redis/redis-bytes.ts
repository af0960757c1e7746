/** Values up to this size are copied rather than viewed (V8 keeps typed arrays this small on its heap). */
const COPY_LIMIT = 64;

/**
 * The bytes as a Buffer for a Redis command argument (ioredis sends Buffers as they are, anything else
 * as a string). A small Uint8Array is copied: reading its `.buffer` would make V8 move it off the heap
 * into a backing store of its own, which costs more than copying a few bytes. Larger ones are viewed.
 */
export function commandBytes(value: Uint8Array): Buffer {
  if (Buffer.isBuffer(value)) return value;
  return value.byteLength <= COPY_LIMIT
    ? Buffer.from(value)
    : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}
