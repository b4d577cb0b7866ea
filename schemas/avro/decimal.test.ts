import { describe, expect, it } from 'vitest';
import { bigintToBytes, bytesToBigint, formatDecimal, parseDecimal } from './decimal.js';

describe('decimal bytes', () => {
  it("matches Java's BigInteger.toByteArray", () => {
    const cases: [bigint, number[]][] = [
      [0n, [0x00]],
      [1n, [0x01]],
      [-1n, [0xff]],
      [127n, [0x7f]],
      [128n, [0x00, 0x80]],
      [-128n, [0x80]],
      [-129n, [0xff, 0x7f]],
      [102450n, [0x01, 0x90, 0x32]],
      [-102450n, [0xfe, 0x6f, 0xce]],
    ];
    for (const [n, bytes] of cases) {
      expect([...bigintToBytes(n)], String(n)).toEqual(bytes);
      expect(bytesToBigint(Buffer.from(bytes))).toBe(n);
    }
  });

  it('round-trips large values', () => {
    for (const s of ['99999999999999999999999999999999999999', '-18446744073709551615', '170141183460469231731687303715884105728']) {
      const n = BigInt(s);
      expect(bytesToBigint(bigintToBytes(n))).toBe(n);
    }
  });
});

describe('decimal text', () => {
  it('parses at the scale and prints the source form back', () => {
    expect(parseDecimal('1024.50', 2)).toBe(102450n);
    expect(formatDecimal(102450n, 2)).toBe('1024.50');
    expect(formatDecimal(-5n, 2)).toBe('-0.05');
    expect(formatDecimal(0n, 3)).toBe('0.000');
    expect(formatDecimal(42n, 0)).toBe('42');
    expect(parseDecimal('1024.5', 2)).toBe(102450n); // fewer digits: same value (printed back as 1024.50)
  });

  it('refuses more fraction digits than the scale, and non-numbers', () => {
    expect(parseDecimal('1.234', 2)).toBeUndefined();
    expect(parseDecimal('NaN', 2)).toBeUndefined();
    expect(parseDecimal('Infinity', 2)).toBeUndefined();
    expect(parseDecimal('1e5', 2)).toBeUndefined();
  });
});
