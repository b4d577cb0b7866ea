import { describe, expect, it } from 'vitest';
import { pgArrayLiteral, pgCastType, pgCell, pgTypeFor } from './type-map.js';
import { pgQuote } from './dialect.js';

const col = (type: string) => ({ name: 'c', type, nullable: true });

describe('PostgreSQL type map', () => {
  it('maps neutral types from MySQL sources', () => {
    expect(pgTypeFor({ kind: 'int', bits: 64, unsigned: true })).toBe('numeric(20,0)');
    expect(pgTypeFor({ kind: 'int', bits: 32, unsigned: true })).toBe('bigint');
    expect(pgTypeFor({ kind: 'string', length: 10, fixed: true })).toBe('character varying(10)');
    expect(pgTypeFor({ kind: 'timestamp', tz: true, precision: 6 })).toBe('timestamp(6) with time zone');
    expect(pgTypeFor({ kind: 'array', element: { kind: 'int', bits: 32 }, dims: 2 })).toBe('integer[][]');
    expect(pgTypeFor({ kind: 'set', values: ['a'] })).toBe('text');
  });
  it('casts to the base type so the column assignment checks lengths (an explicit cast would truncate)', () => {
    expect(pgCastType('character varying(40)')).toBe('character varying');
    expect(pgCastType('character(5)')).toBe('text');
    expect(pgCastType('bit(4)')).toBe('bit varying');
    expect(pgCastType('numeric(12,2)[]')).toBe('numeric[]');
    expect(pgCastType('timestamp(3) without time zone')).toBe('timestamp without time zone');
    expect(pgCastType('"my type"')).toBe('"my type"');
  });
  it('converts canonical values to input text', () => {
    expect(pgCell(true, { kind: 'bool' }, col('boolean'))).toBe('true');
    expect(pgCell('AP8Q', { kind: 'bytes' }, col('bytea'))).toBe('AP8Q');
    expect(pgCell('0000-00-00', { kind: 'date' }, col('date'))).toBeNull();
    expect(pgCell(['a,b', null, 'x"y'], { kind: 'array', element: { kind: 'string' } }, col('text[]'))).toBe('{"a,b",NULL,"x\\"y"}');
    expect(pgCell([1, 2], { kind: 'json' }, col('json'))).toBe('[1,2]');
    expect(pgArrayLiteral([['AP8Q']], { kind: 'bytes' })).toBe('{{"\\\\x00ff10"}}');
  });
  it('quotes identifiers', () => {
    expect(pgQuote('we"ird;tab le')).toBe('"we""ird;tab le"');
  });
});
