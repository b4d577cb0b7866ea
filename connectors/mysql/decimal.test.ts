import { describe, expect, it } from 'vitest';
import { decimalBinarySize, decodeDecimal } from './decimal.js';

describe('packed DECIMAL', () => {
  // The worked example in MySQL's strings/decimal.cc (decimal2bin): DECIMAL(14,4).
  it('decodes the documented 1234567890.1234 and its negative', () => {
    expect(decodeDecimal(Buffer.from('810DFB38D204D2', 'hex'), 0, 14, 4)).toEqual({ value: '1234567890.1234', size: 7 });
    expect(decodeDecimal(Buffer.from('7EF204C72DFB2D', 'hex'), 0, 14, 4)).toEqual({ value: '-1234567890.1234', size: 7 });
  });

  it('computes sizes from digit groups', () => {
    expect(decimalBinarySize(14, 4)).toBe(7);
    expect(decimalBinarySize(10, 3)).toBe(4 + 2); // 7 int digits = 4 bytes, 3 frac = 2
    expect(decimalBinarySize(65, 30)).toBe(16 + 14); // 35 int: 3*4+4, 30 frac: 3*4+2
    expect(decimalBinarySize(5, 0)).toBe(3);
  });

  it('keeps every digit of DECIMAL(65,30) and pads the fraction to the scale', () => {
    // 3.14 in DECIMAL(3,2): one leading digit byte, one fraction byte, sign bit set.
    expect(decodeDecimal(Buffer.from([0x83, 0x0e]), 0, 3, 2).value).toBe('3.14');
    expect(decodeDecimal(Buffer.from([0x80, 0x05]), 0, 3, 2).value).toBe('0.05');
    expect(decodeDecimal(Buffer.from([0x80, 0x00]), 0, 3, 2).value).toBe('0.00');
    // 0 negative would be all-inverted zeros: printed without a sign.
    expect(decodeDecimal(Buffer.from([0x7f, 0xff]), 0, 3, 2).value).toBe('0.00');
  });

  it('rejects corrupt digit groups and truncated values', () => {
    expect(() => decodeDecimal(Buffer.from([0x80 | 0x7f, 0x0e]), 0, 3, 2)).toThrow(/digit group/);
    expect(() => decodeDecimal(Buffer.from([0x83]), 0, 3, 2)).toThrow(/truncated/);
  });
});
