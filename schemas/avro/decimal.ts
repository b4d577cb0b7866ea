/** Decimal text <-> Avro `decimal` logical type (unscaled two's-complement big-endian bytes). */

const DECIMAL = /^(-)?(\d+)(?:\.(\d+))?$/;

/** Unscaled value of `text` at `scale`, or undefined when it has more fraction digits (would round). */
export function parseDecimal(text: string, scale: number): bigint | undefined {
  const m = DECIMAL.exec(text);
  if (!m) return undefined;
  const frac = m[3] ?? '';
  if (frac.length > scale) return undefined;
  const unscaled = BigInt(`${m[2]}${frac.padEnd(scale, '0')}`);
  return m[1] ? -unscaled : unscaled;
}

/** Count of significant integer + fraction digits of an unscaled value (its precision use). */
export function digits(unscaled: bigint): number {
  return (unscaled < 0n ? -unscaled : unscaled).toString().length;
}

/** The text PostgreSQL and MySQL print for an unscaled value at `scale`: exactly `scale` fraction digits. */
export function formatDecimal(unscaled: bigint, scale: number): string {
  const neg = unscaled < 0n;
  const s = (neg ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  const text = scale === 0 ? s : `${s.slice(0, s.length - scale)}.${s.slice(s.length - scale)}`;
  return neg ? `-${text}` : text;
}

/** Minimal two's-complement big-endian bytes (Java's BigInteger.toByteArray). */
export function bigintToBytes(n: bigint): Buffer {
  const neg = n < 0n;
  let hex = (neg ? -n - 1n : n).toString(16);
  if (hex.length % 2 === 1) hex = `0${hex}`;
  let buf = Buffer.from(hex, 'hex');
  if (buf.length === 0 || (buf[0]! & 0x80) !== 0) buf = Buffer.concat([Buffer.alloc(1), buf]);
  if (neg) for (let i = 0; i < buf.length; i++) buf[i] = ~buf[i]! & 0xff;
  return buf;
}

export function bytesToBigint(buf: Buffer): bigint {
  if (buf.length === 0) return 0n;
  const n = BigInt(`0x${buf.toString('hex')}`);
  return (buf[0]! & 0x80) !== 0 ? n - (1n << BigInt(buf.length * 8)) : n;
}
