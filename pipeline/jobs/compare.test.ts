import { describe, expect, it } from 'vitest';
import type { TableSchema } from '../../schemas/index.js';
import { comparable, comparePlan, diffRows, rowsDigest } from './compare.js';

const pg: TableSchema = {
  id: { db: 'a', schema: 'public', table: 't' },
  columns: [
    { name: 'id', type: { kind: 'int', bits: 64 }, nullable: false, sourceType: 'bigint' },
    { name: 'amount', type: { kind: 'decimal', precision: 12, scale: 2 }, nullable: true, sourceType: 'numeric(12,2)' },
    { name: 'at', type: { kind: 'timestamp', tz: false, precision: 6 }, nullable: true, sourceType: 'timestamp(6)' },
    { name: 'doc', type: { kind: 'json' }, nullable: true, sourceType: 'jsonb' },
    { name: 'flag', type: { kind: 'bool' }, nullable: true, sourceType: 'boolean' },
  ],
  primaryKey: ['id'],
  dialect: 'postgres',
};
const my: TableSchema = {
  id: { db: 'a', schema: null, table: 't' },
  columns: [
    { name: 'id', type: { kind: 'int', bits: 32 }, nullable: false, sourceType: 'int(11)' },
    { name: 'amount', type: { kind: 'decimal', precision: 12, scale: 3 }, nullable: true, sourceType: 'decimal(12,3)' },
    { name: 'at', type: { kind: 'timestamp', tz: false, precision: 6 }, nullable: true, sourceType: 'datetime(6)' },
    { name: 'doc', type: { kind: 'json' }, nullable: true, sourceType: 'longtext' },
    { name: 'flag', type: { kind: 'int', bits: 8 }, nullable: true, sourceType: 'tinyint(1)' },
    { name: '_cdc_ts', type: { kind: 'int', bits: 64 }, nullable: true, sourceType: 'bigint' },
  ],
  primaryKey: ['id'],
  dialect: 'mysql',
};

describe('cross-dialect comparison', () => {
  const plan = comparePlan(pg, my);
  it('ignores notation only', () => {
    const a = { id: '7', amount: '1.50', at: '2026-01-02T03:04:05.5', doc: '{"b": 1, "a": [1, 2]}', flag: true };
    const b = { id: 7, amount: '1.500', at: '2026-01-02T03:04:05.500000', doc: '{"a":[1,2],"b":1}', flag: 1, _cdc_ts: '5' };
    expect(rowsDigest(plan, [a])).toBe(rowsDigest(plan, [b]));
    expect(diffRows(plan, [a], [b])).toEqual({ changed: [], missing: [], extra: [] });
    expect(plan.extraColumns).toEqual(['_cdc_ts']);
  });
  it('names a changed cell, a missing row and an extra row', () => {
    const src = [
      { id: '1', amount: '1.00', at: null, doc: null, flag: false },
      { id: '2', amount: '2.00', at: null, doc: null, flag: false },
    ];
    const dst = [
      { id: 1, amount: '1.01', at: null, doc: null, flag: 0 },
      { id: 3, amount: '3.00', at: null, doc: null, flag: 0 },
    ];
    expect(rowsDigest(plan, src)).not.toBe(rowsDigest(plan, dst));
    expect(diffRows(plan, src, dst)).toEqual({ changed: [{ key: { id: '1' }, columns: ['amount'] }], missing: [{ id: '2' }], extra: [{ id: 3 }] });
  });
  it('keeps real differences', () => {
    expect(comparable(pg.columns[1], my.columns[1], '10.5')).not.toBe(comparable(pg.columns[1], my.columns[1], '1.05'));
    expect(comparable(pg.columns[2], my.columns[2], '2026-01-02T03:04:05.000001')).not.toBe(comparable(pg.columns[2], my.columns[2], '2026-01-02T03:04:05'));
    expect(comparable(undefined, undefined, 'abc ')).not.toBe(comparable(undefined, undefined, 'abc'));
  });
  it('matches keyless rows by content, duplicates counted', () => {
    const k = comparePlan({ ...pg, primaryKey: [] }, { ...my, primaryKey: [] });
    const r = { id: '1', amount: null, at: null, doc: null, flag: null };
    const d = diffRows(k, [r, r], [r]);
    expect(d.missing).toHaveLength(1);
    expect(d.extra).toHaveLength(0);
  });
});

describe('comparable across dialects', () => {
  it('treats a UTC timestamptz and the same DATETIME digits as equal, other instants as different', async () => {
    const { comparable } = await import('./compare.js');
    const tz = { name: 'at', type: { kind: 'timestamp' as const, tz: true }, nullable: false, sourceType: 'timestamptz' };
    const dt = { name: 'at', type: { kind: 'timestamp' as const, tz: false, precision: 6 }, nullable: false, sourceType: 'datetime(6)' };
    expect(comparable(tz, dt, '2026-11-25T23:23:20.053451Z')).toBe(comparable(tz, dt, '2026-11-25T23:23:20.053451'));
    expect(comparable(tz, dt, '2026-11-25T23:23:20.053451Z')).not.toBe(comparable(tz, dt, '2026-11-25T23:23:20.053452'));
  });
});
