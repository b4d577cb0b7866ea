import { describe, expect, it } from 'vitest';
import { diffSchemas, schemaFingerprint, sameType, type TableSchema } from './table-schema.js';

const base: TableSchema = {
  id: { db: 'shop', schema: null, table: 't' },
  dialect: 'mysql',
  primaryKey: ['id'],
  columns: [
    { name: 'id', type: { kind: 'int', bits: 32 }, nullable: false, sourceType: 'int(11)' },
    { name: 'at', type: { kind: 'timestamp', tz: false, precision: 6 }, nullable: false, sourceType: 'datetime(6)' },
  ],
};

describe('schema comparison', () => {
  it('ignores property order inside types', () => {
    expect(sameType({ kind: 'timestamp', tz: false, precision: 6 }, { kind: 'timestamp', precision: 6, tz: false })).toBe(true);
    const reordered: TableSchema = { ...base, columns: [base.columns[0]!, { ...base.columns[1]!, type: { kind: 'timestamp', precision: 6, tz: false } }] };
    expect(diffSchemas(base, reordered)).toEqual([]);
    expect(schemaFingerprint(base)).toBe(schemaFingerprint(reordered));
  });

  it('finds real changes', () => {
    const next: TableSchema = {
      ...base,
      columns: [{ ...base.columns[0]!, type: { kind: 'int', bits: 64 }, sourceType: 'bigint(20)' }, { name: 'note', type: { kind: 'string' }, nullable: true, sourceType: 'text' }],
    };
    expect(diffSchemas(base, next).map((d) => d.change)).toEqual(['drop-column', 'alter-type', 'add-column']);
  });
});
