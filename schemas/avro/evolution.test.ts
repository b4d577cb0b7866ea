import { describe, expect, it } from 'vitest';
import type { ColumnType } from '../column-types.js';
import type { TableSchema } from '../table-schema.js';
import { checkEvolution, narrowing } from './evolution.js';

const ok: [ColumnType, ColumnType][] = [
  [{ kind: 'int', bits: 16 }, { kind: 'int', bits: 32 }],
  [{ kind: 'int', bits: 32 }, { kind: 'int', bits: 64 }],
  [{ kind: 'int', bits: 32, unsigned: true }, { kind: 'int', bits: 64 }],
  [{ kind: 'int', bits: 32 }, { kind: 'float', bits: 64 }],
  [{ kind: 'float', bits: 32 }, { kind: 'float', bits: 64 }],
  [{ kind: 'string', length: 20 }, { kind: 'string', length: 80 }],
  [{ kind: 'string', length: 20 }, { kind: 'string' }],
  [{ kind: 'decimal', precision: 10, scale: 2 }, { kind: 'decimal', precision: 14, scale: 2 }],
  [{ kind: 'enum', values: ['a', 'b'] }, { kind: 'enum', values: ['a', 'b', 'c'] }],
  [{ kind: 'json' }, { kind: 'string' }],
  [{ kind: 'timestamp', tz: false, precision: 3 }, { kind: 'timestamp', tz: false, precision: 6 }],
  [{ kind: 'array', element: { kind: 'int', bits: 16 } }, { kind: 'array', element: { kind: 'int', bits: 32 } }],
  [{ kind: 'year' }, { kind: 'int', bits: 16 }],
];

const refused: [ColumnType, ColumnType, RegExp][] = [
  [{ kind: 'int', bits: 64 }, { kind: 'int', bits: 32 }, /integer range narrowed/],
  [{ kind: 'int', bits: 32 }, { kind: 'int', bits: 16 }, /integer range narrowed/],
  [{ kind: 'int', bits: 32 }, { kind: 'int', bits: 32, unsigned: true }, /integer range narrowed/],
  [{ kind: 'int', bits: 64 }, { kind: 'float', bits: 64 }, /loses precision/],
  [{ kind: 'float', bits: 64 }, { kind: 'float', bits: 32 }, /float precision narrowed/],
  [{ kind: 'string', length: 40 }, { kind: 'string', length: 20 }, /string length narrowed/],
  [{ kind: 'string' }, { kind: 'string', length: 20 }, /string length narrowed/],
  [{ kind: 'decimal', precision: 12, scale: 2 }, { kind: 'decimal', precision: 10, scale: 2 }, /precision narrowed/],
  [{ kind: 'decimal', precision: 12, scale: 2 }, { kind: 'decimal', precision: 14, scale: 4 }, /scale changed/],
  [{ kind: 'decimal', precision: 12, scale: 2 }, { kind: 'decimal' }, /representation/],
  [{ kind: 'enum', values: ['a', 'b'] }, { kind: 'enum', values: ['a'] }, /enum values removed: b/],
  [{ kind: 'string' }, { kind: 'int', bits: 32 }, /string -> int/],
  [{ kind: 'date' }, { kind: 'timestamp', tz: false }, /date -> timestamp/],
  [{ kind: 'timestamp', tz: false }, { kind: 'timestamp', tz: true }, /time zone/],
  [{ kind: 'timestamp', tz: false, precision: 6 }, { kind: 'timestamp', tz: false, precision: 3 }, /fractional seconds/],
  [{ kind: 'array', element: { kind: 'int', bits: 32 } }, { kind: 'array', element: { kind: 'int', bits: 32 }, dims: 2 }, /dimensions/],
  [{ kind: 'int', bits: 32 }, { kind: 'decimal', precision: 20, scale: 0 }, /not a widening/],
];

describe('narrowing rules', () => {
  it.each(ok)('%j -> %j is a widening', (a, b) => expect(narrowing(a, b, 'postgres')).toBeNull());
  it.each(refused)('%j -> %j is refused', (a, b, why) => expect(narrowing(a, b, 'postgres')).toMatch(why));
  it('treats a missing time precision as the dialect default', () => {
    expect(narrowing({ kind: 'timestamp', tz: false }, { kind: 'timestamp', tz: false, precision: 3 }, 'postgres')).toMatch(/precision/);
    expect(narrowing({ kind: 'timestamp', tz: false }, { kind: 'timestamp', tz: false, precision: 3 }, 'mysql')).toBeNull();
  });
});

describe('checkEvolution', () => {
  const t = (cols: [string, ColumnType, boolean][]): TableSchema => ({
    id: { db: 'd', schema: null, table: 't' },
    dialect: 'mysql',
    primaryKey: ['id'],
    columns: cols.map(([name, type, nullable]) => ({ name, type, nullable, sourceType: JSON.stringify(type) })),
  });
  const id: [string, ColumnType, boolean] = ['id', { kind: 'int', bits: 32 }, false];

  it('allows adding, dropping, renaming and nullability changes', () => {
    const v1 = t([id, ['a', { kind: 'string' }, false], ['b', { kind: 'bool' }, true]]);
    const v2 = t([id, ['a', { kind: 'string' }, true], ['c', { kind: 'bool' }, false], ['d', { kind: 'int', bits: 8 }, false]]);
    expect(checkEvolution(v1, v2)).toEqual([]);
    expect(checkEvolution(v2, v1)).toEqual([]);
  });

  it('names every narrowed column', () => {
    const v1 = t([id, ['a', { kind: 'string', length: 10 }, true], ['b', { kind: 'int', bits: 64 }, true]]);
    const v2 = t([id, ['a', { kind: 'string', length: 5 }, true], ['b', { kind: 'int', bits: 32 }, true]]);
    expect(checkEvolution(v1, v2).map((v) => [v.column, v.rule])).toEqual([
      ['a', 'string length narrowed'],
      ['b', 'integer range narrowed'],
    ]);
  });
});
