import { describe, expect, it } from 'vitest';
import { mysqlCell, mysqlKeyExpr, mysqlTypeFor, sqlString } from './type-map.js';
import { mysqlQuote } from './dialect.js';

const col = (type: string, extra: Record<string, string> = {}) => ({ name: 'c', type, nullable: true, ...extra });

describe('MySQL type map', () => {
  it('maps neutral types from PostgreSQL sources', () => {
    expect(mysqlTypeFor({ kind: 'decimal' }, { key: false, keyColumns: 1 })).toBe('decimal(65,30)');
    expect(mysqlTypeFor({ kind: 'timestamp', tz: true, precision: 3 }, { key: false, keyColumns: 1 })).toBe('datetime(3)');
    expect(mysqlTypeFor({ kind: 'string' }, { key: true, keyColumns: 1 })).toMatch(/^varchar\(7\d\d\) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin$/);
    expect(mysqlTypeFor({ kind: 'enum', values: ["x'y", 'b'] }, { key: false, keyColumns: 1 })).toContain("enum('x''y','b')");
    expect(mysqlTypeFor({ kind: 'bit', length: 0 }, { key: false, keyColumns: 1 })).toMatch(/^varchar/);
  });
  it('refuses values MySQL cannot hold, with the reason', () => {
    expect(() => mysqlCell('NaN', { kind: 'float', bits: 64 }, col('double'))).toThrow(/NaN/);
    expect(() => mysqlCell('infinity', { kind: 'date' }, col('date'))).toThrow(/infinity/);
    expect(() => mysqlCell('0044-03-15 BC', { kind: 'date' }, col('date'))).toThrow(/range/);
    expect(() => mysqlCell('12abc', { kind: 'int', bits: 64 }, col('bigint'))).toThrow(/integer/);
  });
  it('converts canonical values to assignable text', () => {
    expect(mysqlCell('2026-11-25T22:08:24.123456Z', { kind: 'timestamp', tz: true }, col('datetime(6)'))).toBe('2026-11-25 22:08:24.123456');
    expect(mysqlCell(true, { kind: 'bool' }, col('tinyint(1)'))).toBe('1');
    expect(mysqlCell('abc', { kind: 'string' }, col('varbinary(10)'))).toBe('YWJj');
    expect(mysqlCell(5, { kind: 'int', bits: 32 }, col('bit(4)'))).toBe('101');
    expect(mysqlCell([1, 'a'], { kind: 'array', element: { kind: 'string' } }, col('json'))).toBe('[1,"a"]');
  });
  it('compares keys in the column type and collation', () => {
    expect(mysqlKeyExpr('k.c0', col('bigint(20) unsigned'))).toBe('CAST(k.c0 AS UNSIGNED)');
    expect(mysqlKeyExpr('k.c0', col('decimal(12,2)'))).toBe('CAST(k.c0 AS DECIMAL(12,2))');
    expect(mysqlKeyExpr('k.c0', col('varchar(10)', { charset: 'utf8mb4', collation: 'utf8mb4_bin' }))).toBe('CONVERT(k.c0 USING utf8mb4) COLLATE utf8mb4_bin');
  });
  it('quotes identifiers and strings', () => {
    expect(mysqlQuote('we`ird;tab le')).toBe('`we``ird;tab le`');
    expect(sqlString("a'b\\c")).toBe("'a''b\\\\c'");
  });
});
