import { PoisonRecordError } from '../errors.js';

/** Confluent wire format: magic byte 0, 4-byte big-endian schema id, then the Avro body. */
export const MAGIC = 0;

export function frame(schemaId: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = MAGIC;
  out.writeUInt32BE(schemaId, 1);
  body.copy(out, 5);
  return out;
}

export function unframe(buf: Buffer): { schemaId: number; body: Buffer } {
  if (buf.length < 5 || buf[0] !== MAGIC) {
    throw new PoisonRecordError(`not a Confluent-framed Avro record (magic byte ${buf[0] ?? 'missing'}, ${buf.length} bytes)`);
  }
  return { schemaId: buf.readUInt32BE(1), body: buf.subarray(5) };
}

let scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * Encodes `value` with `type` straight behind the 5-byte header in a reused buffer and copies
 * the result out once (avsc's toBuffer + frame would allocate and copy twice).
 */
export function encodeFramed(type: { encode(val: unknown, buf: Buffer, pos?: number): number }, schemaId: number, value: unknown): Buffer {
  for (;;) {
    const end = type.encode(value, scratch, 5);
    if (end >= 0) {
      scratch[0] = MAGIC;
      scratch.writeUInt32BE(schemaId, 1);
      return Buffer.from(scratch.subarray(0, end));
    }
    // A negative end is minus the bytes still missing.
    scratch = Buffer.allocUnsafe(Math.max(scratch.length * 2, scratch.length - end));
  }
}
