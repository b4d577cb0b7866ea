import { describe, expect, it } from 'vitest';
import { asText, decodeBytea, decodeFloat, decodeSmallInt, decodeTimestamp, decodeTimestamptz, parseArray } from './values.js';
import { type PgTypeInfo, OID, columnCodec, numericTypmod } from './type-map.js';

describe('value decoders', () => {
  it('keeps microseconds and converts to the canonical timestamp forms', () => {
    expect(decodeTimestamp('2026-11-25 22:08:24.123456')).toBe('2026-11-25T22:08:24.123456');
    expect(decodeTimestamp('0044-03-15 12:00:00 BC')).toBe('0044-03-15T12:00:00 BC');
    expect(decodeTimestamp('infinity')).toBe('infinity');
    expect(decodeTimestamptz('2026-11-25 22:08:24.000001+00')).toBe('2026-11-25T22:08:24.000001Z');
    expect(decodeTimestamptz('294276-12-31 23:59:59.999999+00')).toBe('294276-12-31T23:59:59.999999Z');
    expect(decodeTimestamptz('4713-01-01 00:00:00+00 BC')).toBe('4713-01-01T00:00:00Z BC');
    expect(decodeTimestamptz('-infinity')).toBe('-infinity');
    expect(() => decodeTimestamptz('2026-11-25 22:08:24+02')).toThrow(/UTC/);
  });

  it('decodes floats without losing the special values', () => {
    expect(decodeFloat('NaN')).toBe('NaN');
    expect(decodeFloat('-Infinity')).toBe('-Infinity');
    expect(decodeFloat('1.7976931348623157e+308')).toBe(Number.MAX_VALUE);
    expect(decodeFloat('3.4028235e+38')).toBe(3.4028235e38);
    expect(() => decodeFloat('abc')).toThrow();
    expect(decodeSmallInt('-2147483648')).toBe(-2147483648);
  });

  it('turns hex bytea into base64', () => {
    expect(decodeBytea('\\x')).toBe('');
    expect(decodeBytea('\\x0001feff')).toBe(Buffer.from([0, 1, 254, 255]).toString('base64'));
    expect(() => decodeBytea('abc')).toThrow(/hex/);
  });

  it('parses array literals: quoting, escapes, NULL, nesting, bounds, custom delimiters', () => {
    expect(parseArray('{}', asText)).toEqual([]);
    expect(parseArray('{1,2,NULL}', decodeSmallInt)).toEqual([1, 2, null]);
    expect(parseArray('{"a,b","with \\"quote\\"","back\\\\slash","NULL",null," sp "}', asText)).toEqual(['a,b', 'with "quote"', 'back\\slash', 'NULL', null, ' sp ']);
    expect(parseArray('{{1,2},{3,4}}', decodeSmallInt)).toEqual([[1, 2], [3, 4]]);
    expect(parseArray('[0:1]={7,8}', decodeSmallInt)).toEqual([7, 8]);
    expect(parseArray('{(1,1),(0,0);(2,2),(1,1)}', asText, ';')).toEqual(['(1,1),(0,0)', '(2,2),(1,1)']);
    expect(parseArray('{"\\\\x0102"}', decodeBytea)).toEqual(['AQI=']);
    expect(parseArray('{"ünï","日本"}', asText)).toEqual(['ünï', '日本']);
    expect(() => parseArray('{1,2', asText)).toThrow();
    expect(() => parseArray('{1}x', asText)).toThrow(/trailing/);
  });
});

describe('type map', () => {
  const types = new Map<number, PgTypeInfo>();
  const add = (t: Partial<PgTypeInfo> & { oid: number; name: string }) =>
    types.set(t.oid, { namespace: 'public', typtype: 'b', category: 'U', elem: 0, baseType: 0, typmod: -1, delim: ',', labels: null, ...t });
  add({ oid: 1007, name: '_int4', category: 'A', elem: OID.int4 });
  add({ oid: 1231, name: '_numeric', category: 'A', elem: OID.numeric });
  add({ oid: 90001, name: 'mood', typtype: 'e', category: 'E', labels: ['sad', 'happy'] });
  add({ oid: 90002, name: 'money_amount', typtype: 'd', baseType: OID.numeric, typmod: ((12 << 16) | 2) + 4 });
  add({ oid: 90003, name: 'posint_list', typtype: 'd', baseType: 1007 });
  add({ oid: 90004, name: 'int4range', typtype: 'r', category: 'R' });
  const lookup = (oid: number) => types.get(oid);

  it('reads numeric typmods, including the negative scales PostgreSQL 15 allows', () => {
    expect(numericTypmod(-1)).toEqual({});
    expect(numericTypmod(((10 << 16) | 2) + 4)).toEqual({ precision: 10, scale: 2 });
    expect(numericTypmod(((5 << 16) | (-3 & 0x7ff)) + 4)).toEqual({ precision: 5, scale: -3 });
  });

  it('maps built-ins, arrays, enums, domains and unknowns', () => {
    expect(columnCodec(OID.int8, -1, lookup).type).toEqual({ kind: 'int', bits: 64 });
    expect(columnCodec(OID.varchar, 44, lookup).type).toEqual({ kind: 'string', length: 40 });
    expect(columnCodec(OID.bpchar, 9, lookup).type).toEqual({ kind: 'string', length: 5, fixed: true });
    expect(columnCodec(OID.timestamptz, 3, lookup).type).toEqual({ kind: 'timestamp', precision: 3, tz: true });
    const arr = columnCodec(1231, -1, lookup);
    expect(arr.type).toEqual({ kind: 'array', element: { kind: 'decimal' } });
    expect(arr.decode('{1.5,NaN,-0.000000000000000000000000000001}')).toEqual(['1.5', 'NaN', '-0.000000000000000000000000000001']);
    expect(columnCodec(90001, -1, lookup).type).toEqual({ kind: 'enum', values: ['sad', 'happy'], name: 'mood' });
    expect(columnCodec(90002, -1, lookup).type).toEqual({ kind: 'decimal', precision: 12, scale: 2 });
    const dl = columnCodec(90003, -1, lookup);
    expect(dl.type).toEqual({ kind: 'array', element: { kind: 'int', bits: 32 } });
    expect(dl.decode('{1,2}')).toEqual([1, 2]);
    const range = columnCodec(90004, -1, lookup);
    expect(range.type).toEqual({ kind: 'unknown' });
    expect(range.passthrough).toMatch(/range type/);
    expect(range.decode('[1,5)')).toBe('[1,5)');
    expect(columnCodec(123456, -1, lookup).passthrough).toMatch(/not found/);
  });
});
