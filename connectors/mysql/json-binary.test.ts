import { describe, expect, it } from 'vitest';
import { jsonBinaryToText, mysqlDouble, quoteJsonString } from './json-binary.js';

// Documents built by hand from the format in MySQL's sql-common/json_binary.h: offsets count
// from the container's element-count field; small containers use 2-byte fields.
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('MySQL binary JSON', () => {
  it('decodes a small object with an inlined int16', () => {
    // {"a": 1}: count 1, size 12, key entry (offset 11, length 1), value entry (int16 inline 1), key "a"
    expect(jsonBinaryToText(hex('00 0100 0c00 0b00 0100 05 0100 61'))).toBe('{"a": 1}');
  });

  it('decodes an array of int, string, literals and a double', () => {
    // [1, "x", null, true, 2.5]: 5 value entries after the 4-byte header, then "x" at 19, 2.5 at 21
    const doc = hex('02 0500 1d00  05 0100  0c 1300  04 0000  04 0100  0b 1500  01 78  000000000000 0440');
    expect(jsonBinaryToText(doc)).toBe('[1, "x", null, true, 2.5]');
  });

  it('decodes a large object (4-byte fields, inlined int32/uint32 and literal) with a nested array', () => {
    // {"k": -2, "u": 4000000000, "n": false, "arr": [7]}; keys are stored sorted by length then bytes.
    // header 8 + 4 key entries * 6 + 4 value entries * 5 = 52; keys "k","n","u","arr" at 52..57; array at 58.
    const keys = Buffer.from('knuarr');
    const arr = hex('0100 0700 05 0700'); // small array [7] (no type byte: the entry has it), size 7
    const doc = Buffer.concat([
      hex('01'),
      hex('04000000'),
      Buffer.from([(58 + arr.length) & 0xff, 0, 0, 0]),
      hex('34000000 0100'), // "k" at 52
      hex('35000000 0100'), // "n" at 53
      hex('36000000 0100'), // "u" at 54
      hex('37000000 0300'), // "arr" at 55
      hex('07 feffffff'), // int32 -2 inline
      hex('04 02000000'), // false inline
      hex('08 00286bee'), // uint32 4000000000 inline
      hex('02 3a000000'), // small array at 58
      keys,
      arr,
    ]);
    expect(jsonBinaryToText(doc)).toBe('{"k": -2, "n": false, "u": 4000000000, "arr": [7]}');
  });

  it('prints 64-bit integers exactly', () => {
    expect(jsonBinaryToText(hex('0a ffffffffffffffff'))).toBe('18446744073709551615');
    expect(jsonBinaryToText(hex('09 0000000000000080'))).toBe('-9223372036854775808');
  });

  it('prints opaque DECIMAL, DATETIME, DATE and TIME values as the server does', () => {
    // DECIMAL(3,2) 3.14: opaque type 246, length 4: precision, scale, packed bytes
    expect(jsonBinaryToText(hex('0f f6 04 03 02 83 0e'))).toBe('3.14');
    const ymd = BigInt(((2015 * 13 + 1) << 5) | 15);
    const hms = BigInt((23 << 12) | (24 << 6) | 25);
    const packed = Buffer.alloc(8);
    packed.writeBigInt64LE((((ymd << 17n) | hms) << 24n) + 123456n);
    expect(jsonBinaryToText(Buffer.concat([hex('0f 0c 08'), packed]))).toBe('"2015-01-15 23:24:25.123456"');
    const date = Buffer.alloc(8);
    date.writeBigInt64LE((ymd << 17n) << 24n);
    expect(jsonBinaryToText(Buffer.concat([hex('0f 0a 08'), date]))).toBe('"2015-01-15"');
    const time = Buffer.alloc(8);
    time.writeBigInt64LE(-((BigInt((100 << 12) | (2 << 6) | 3) << 24n) + 500000n));
    expect(jsonBinaryToText(Buffer.concat([hex('0f 0b 08'), time]))).toBe('"-100:02:03.500000"');
    // Other opaque types: base64 with the field type, quoted.
    expect(jsonBinaryToText(hex('0f fc 02 0102'))).toBe('"base64:type252:AQI="');
  });

  it('escapes strings like MySQL (control characters as \\u00xx)', () => {
    expect(quoteJsonString('a"b\\c\n\t\u0001\u001f😀/')).toBe('"a\\"b\\\\c\\n\\t\\u0001\\u001f😀/"');
    const s = Buffer.from('é\n');
    expect(jsonBinaryToText(Buffer.concat([hex('0c'), Buffer.from([s.length]), s]))).toBe('"é\\n"');
  });

  it('reads multi-byte string lengths (7 bits per byte)', () => {
    const s = 'x'.repeat(200);
    expect(jsonBinaryToText(Buffer.concat([hex('0c c801'), Buffer.from(s)]))).toBe(`"${s}"`);
  });

  it('formats doubles with my_gcvt rules and a .0 on whole numbers', () => {
    const d = (x: number) => {
      const b = Buffer.alloc(9);
      b[0] = 0x0b;
      b.writeDoubleLE(x, 1);
      return jsonBinaryToText(b);
    };
    expect(d(1)).toBe('1.0');
    expect(d(-2)).toBe('-2.0');
    expect(d(0.1)).toBe('0.1');
    expect(d(1e300)).toBe('1e300');
    expect(d(1e15)).toBe('1e15');
    expect(d(123456789012345)).toBe('123456789012345.0');
    expect(d(1.2345678901234568e20)).toBe('1.2345678901234568e20');
    expect(d(0.0001)).toBe('0.0001');
    expect(d(1e-15)).toBe('0.000000000000001');
    expect(d(1e-16)).toBe('1e-16');
    expect(d(-1.5e-20)).toBe('-1.5e-20');
    expect(mysqlDouble(1.7976931348623157e308)).toBe('1.7976931348623157e308');
  });

  it('treats an empty value as the JSON null document and rejects corrupt offsets', () => {
    expect(jsonBinaryToText(Buffer.alloc(0))).toBe('null');
    expect(() => jsonBinaryToText(hex('02 0100 0700 0c ff00'))).toThrow(/corrupt binary JSON/);
    expect(() => jsonBinaryToText(hex('0e 00'))).toThrow(/unknown value type/);
  });
});
