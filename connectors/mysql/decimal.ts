import { CdcError } from '../../schemas/errors.js';

/**
 * MySQL's packed binary DECIMAL (strings/decimal.cc `decimal2bin`), decoded straight to the
 * decimal text the server prints: never through a float, so DECIMAL(65,30) stays exact.
 *
 * Layout: the integer digits then the fraction digits, each side in groups of 9 decimal digits
 * stored as 4-byte big-endian integers; the leftover digits of the integer part (leading) and of
 * the fraction (trailing) take 1..4 bytes. The first bit is the sign (1 = positive, flipped so
 * the bytes sort), and a negative number has every byte inverted.
 */

const DIG2BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4] as const;
const POW10 = [1, 10, 100, 1000, 10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000] as const;

/** Bytes a DECIMAL(precision, scale) value takes in a row image. */
export function decimalBinarySize(precision: number, scale: number): number {
  const intg = precision - scale;
  return Math.floor(intg / 9) * 4 + DIG2BYTES[intg % 9]! + Math.floor(scale / 9) * 4 + DIG2BYTES[scale % 9]!;
}

function group(b: Buffer, pos: number, n: number, digits: number): number {
  const v = b.readUIntBE(pos, n);
  if (v >= POW10[digits]!) throw new CdcError(`corrupt DECIMAL value: digit group ${v} has more than ${digits} digits`, { code: 'BINLOG_DECODE' });
  return v;
}

/** Decodes the value at `buf[offset..]`; returns its text and byte size. */
export function decodeDecimal(buf: Buffer, offset: number, precision: number, scale: number): { value: string; size: number } {
  if (precision < 1 || precision > 65 || scale < 0 || scale > 38 || scale > precision) {
    throw new CdcError(`unsupported DECIMAL(${precision},${scale})`, { code: 'BINLOG_DECODE' });
  }
  const size = decimalBinarySize(precision, scale);
  if (offset + size > buf.length) throw new CdcError(`binlog event truncated: DECIMAL(${precision},${scale}) needs ${size} bytes`, { code: 'BINLOG_DECODE' });
  // Work on a copy: the sign flip and inversion must not touch the event buffer.
  const b = Buffer.from(buf.subarray(offset, offset + size));
  const positive = (b[0]! & 0x80) !== 0;
  b[0] = b[0]! ^ 0x80;
  if (!positive) for (let i = 0; i < size; i++) b[i] = b[i]! ^ 0xff;

  const intg = precision - scale;
  const intg0 = Math.floor(intg / 9);
  const intg0x = intg % 9;
  const frac0 = Math.floor(scale / 9);
  const frac0x = scale % 9;

  let pos = 0;
  let int = '';
  if (intg0x > 0) {
    const n = DIG2BYTES[intg0x]!;
    int += String(group(b, pos, n, intg0x));
    pos += n;
  }
  for (let i = 0; i < intg0; i++) {
    int += String(group(b, pos, 4, 9)).padStart(9, '0');
    pos += 4;
  }
  int = int.replace(/^0+/, '') || '0';

  let frac = '';
  for (let i = 0; i < frac0; i++) {
    frac += String(group(b, pos, 4, 9)).padStart(9, '0');
    pos += 4;
  }
  if (frac0x > 0) {
    const n = DIG2BYTES[frac0x]!;
    frac += String(group(b, pos, n, frac0x)).padStart(frac0x, '0');
    pos += n;
  }
  const zero = int === '0' && !/[1-9]/.test(frac);
  const sign = positive || zero ? '' : '-';
  return { value: scale > 0 ? `${sign}${int}.${frac}` : `${sign}${int}`, size };
}
