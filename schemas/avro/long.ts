import avro from 'avsc';

const MIN = -(2n ** 63n);
const MAX = 2n ** 63n - 1n;

// avsc copies the bytes out of toBuffer's result at once (packLongBytes), so one scratch buffer
// serves every write: no allocation per long.
const scratch = Buffer.allocUnsafe(8);
const TWO32 = 2 ** 32;

/**
 * Avro `long` read as a JS BigInt, written from a BigInt or from a safe-integer number (cheaper:
 * no BigInt arithmetic for timestamps and small ids). avsc's built-in long goes through JS
 * numbers and refuses values beyond 2^53; 64-bit keys must round-trip exactly, so every `long`
 * in our schemas (and in schemas we resolve against) uses this type (avsc's `LongType.__with`).
 */
export const bigintLong = avro.types.LongType.__with({
  fromBuffer: (buf: Buffer) => buf.readBigInt64LE(),
  toBuffer: (n: bigint | number) => {
    if (typeof n === 'number') {
      const hi = Math.floor(n / TWO32);
      scratch.writeUInt32LE(n - hi * TWO32, 0);
      scratch.writeInt32LE(hi, 4);
    } else scratch.writeBigInt64LE(n);
    return scratch;
  },
  fromJSON: (v: unknown) => (typeof v === 'bigint' ? v : BigInt(v as number | string)),
  toJSON: (n: bigint) => (n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString()),
  isValid: (n: unknown) => (typeof n === 'number' ? Number.isSafeInteger(n) : typeof n === 'bigint' && n >= MIN && n <= MAX),
  compare: (a: bigint, b: bigint) => (a === b ? 0 : a < b ? -1 : 1),
});

/** Options for `avro.Type.forSchema` that every schema of ours is parsed with. */
export function typeOptions(): Partial<avro.ForSchemaOptions> {
  // A fresh registry per parse: named types of one schema must not leak into another. The
  // registry entry covers `"long"` references, the hook `{"type": "long", ...}` objects (logical
  // types such as timestamp-micros), which avsc would otherwise build as its own long.
  return {
    registry: { long: bigintLong },
    typeHook: (schema: avro.Schema) =>
      typeof schema === 'object' && schema !== null && !Array.isArray(schema) && (schema as { type?: unknown }).type === 'long' ? bigintLong : undefined,
    wrapUnions: 'auto',
  };
}

/** Parses an Avro schema (JSON text or object) with our options. */
export function parseAvro(schema: string | object): avro.Type {
  return avro.Type.forSchema((typeof schema === 'string' ? JSON.parse(schema) : schema) as avro.Schema, typeOptions());
}
