import { describe, expect, it } from 'vitest';
import type { TableSchema } from '../../schemas/table-schema.js';
import { tableKey } from './catalog.js';
import { type HistoryRecord, coveredBy, foldHistory, historyKey, latest } from './schema-history.js';

const schema = (cols: string[]): TableSchema => ({
  id: { db: 'd', schema: null, table: 't' },
  columns: cols.map((name) => ({ name, type: { kind: 'int', bits: 32 }, nullable: true, sourceType: 'int(11)' })),
  primaryKey: [],
  dialect: 'mysql',
});
const rec = (kind: 'snapshot' | 'ddl', position: HistoryRecord['position'], cols: string[] | null, extra: Partial<HistoryRecord> = {}): HistoryRecord => ({
  v: 1,
  source: 's',
  kind,
  position,
  ts_ms: 0,
  db: 'd',
  ddl: null,
  tables: [{ id: { db: 'd', schema: null, table: 't' }, schema: cols ? schema(cols) : null }],
  ...extra,
});
const K = tableKey('d', 't');
const names = (s?: TableSchema) => s?.columns.map((c) => c.name);

describe('schema history fold', () => {
  it('orders positions by GTID (both dialects) or by file and position', () => {
    expect(coveredBy({ file: 'b.000001', pos: 9, gtid: '1-1-5' }, { kind: 'mysql', file: 'b.000001', pos: 4, gtidSet: '0-1-9,1-1-5' }, 'mariadb')).toBe(true);
    expect(coveredBy({ file: 'b.000001', pos: 9, gtid: '1-1-6' }, { kind: 'mysql', file: 'b.000009', pos: 4, gtidSet: '1-1-5' }, 'mariadb')).toBe(false);
    const u = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
    expect(coveredBy({ file: 'b.1', pos: 9, gtid: `${u}:7` }, { kind: 'mysql', file: 'b.1', pos: 4, gtidSet: `${u}:1-7` }, 'mysql')).toBe(true);
    expect(coveredBy({ file: 'b.1', pos: 9, gtid: `${u}:8` }, { kind: 'mysql', file: 'b.1', pos: 4, gtidSet: `${u}:1-7` }, 'mysql')).toBe(false);
    expect(coveredBy({ file: 'binlog.000009', pos: 500 }, { kind: 'mysql', file: 'binlog.000010', pos: 4 }, 'mysql')).toBe(true);
    expect(coveredBy({ file: 'binlog.000010', pos: 500 }, { kind: 'mysql', file: 'binlog.000010', pos: 400 }, 'mysql')).toBe(false);
    expect(historyKey({ file: 'f', pos: 1, gtid: '1-1-1' })).toBe('1-1-1');
    expect(historyKey({ file: 'f', pos: 1 })).toBe('f:1');
  });

  it('applies what the checkpoint covers, keeps the rest pending, ignores incomplete snapshot groups', () => {
    const records = [
      rec('snapshot', { file: 'f', pos: 4, gtid: '1-1-1' }, ['a'], { snapshotId: 'x', last: true }),
      rec('ddl', { file: 'f', pos: 10, gtid: '1-1-2' }, ['a', 'b']),
      rec('ddl', { file: 'f', pos: 20, gtid: '1-1-3' }, ['b']),
      rec('snapshot', { file: 'f', pos: 30, gtid: '1-1-4' }, ['zzz'], { snapshotId: 'y', last: false }), // crashed mid-snapshot
    ];
    const at2 = foldHistory(records, { kind: 'mysql', file: 'f', pos: 15, gtidSet: '1-1-2' }, 'mariadb');
    expect(at2.hasSnapshot).toBe(true);
    expect(names(latest(at2.state, K))).toEqual(['a', 'b']);
    // The older definition stays behind the newest one (the merge may need it).
    expect(at2.state.get(K)!.map((d) => names(d.schema))).toEqual([['a', 'b'], ['a']]);
    expect([...at2.pending.keys()]).toEqual(['1-1-3']);
    const fresh = foldHistory(records, null, 'mariadb');
    expect(names(latest(fresh.state, K))).toEqual(['b']);
    expect(fresh.pending.size).toBe(0);
  });

  it('forgets a dropped table and starts over at a complete snapshot', () => {
    const records = [
      rec('snapshot', { file: 'f', pos: 4 }, ['a'], { snapshotId: 'x', last: true }),
      rec('ddl', { file: 'f', pos: 10 }, null),
      rec('snapshot', { file: 'f', pos: 40 }, ['c'], { snapshotId: 'y', last: true }),
    ];
    expect(foldHistory(records.slice(0, 2), null, 'mysql').state.has(K)).toBe(false);
    expect(foldHistory(records, null, 'mysql').state.get(K)!.map((d) => names(d.schema))).toEqual([['c']]);
    expect(foldHistory([], null, 'mysql').hasSnapshot).toBe(false);
  });
});
