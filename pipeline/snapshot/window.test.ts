import { describe, expect, it } from 'vitest';
import type { SourceRecord } from '../../connectors/source.js';
import type { ChangeEvent, Row, TableSchema } from '../../schemas/index.js';
import { SIGNAL, WindowProcessor, type WindowPayload, windowTable } from './window.js';

const items: TableSchema = {
  id: { db: 'app', schema: 'public', table: 'items' },
  columns: [
    { name: 'id', type: { kind: 'int', bits: 32 }, nullable: false, sourceType: 'integer' },
    { name: 'v', type: { kind: 'string' }, nullable: true, sourceType: 'text' },
  ],
  primaryKey: ['id'],
  dialect: 'postgres',
};
const other: TableSchema = { ...items, id: { ...items.id, table: 'other' } };
const signal: TableSchema = {
  id: { db: 'app', schema: 'public', table: 'cdc_signal' },
  columns: ['id', 'type', 'data'].map((name) => ({ name, type: { kind: 'string' as const }, nullable: true, sourceType: 'text' })),
  primaryKey: ['id'],
  dialect: 'postgres',
};

let lsn = 100;
function ev(schema: TableSchema, op: 'c' | 'u' | 'd', row: Row): SourceRecord {
  lsn++;
  const e: ChangeEvent = {
    op,
    before: op === 'c' ? null : { id: row.id ?? null },
    after: op === 'd' ? null : row,
    source: { version: '0', connector: 'postgresql', name: 'pg', ts_ms: 0, snapshot: 'false', db: 'app', schema: 'public', table: schema.id.table, txId: '1' },
    ts_ms: 0,
    transaction: null,
    schema,
    position: { kind: 'pg', lsn: `0/${lsn}` },
  };
  return { type: 'change', event: e };
}
const sig = (type: string, window: string) => {
  const r = ev(signal, 'c', { id: `${window}-${type}`, type, data: JSON.stringify({ window, table: windowTable(items.id) }) });
  if (r.type === 'change') r.event.source = { ...r.event.source, ts_ms: 123_456, ts_us: 123_456_789, origin: 'pg' };
  return r;
};

function store(payloads: Record<string, WindowPayload>) {
  const log: string[] = [];
  return {
    log,
    store: {
      load: async (w: string) => payloads[w] ?? null,
      emitted: async (w: string) => void log.push(`emitted ${w}`),
      abandoned: async (w: string, why: string) => void log.push(`abandoned ${w}: ${why}`),
    },
  };
}

const summary = (recs: SourceRecord[]) => recs.map((r) => (r.type === 'change' ? `${r.event.op}:${r.event.schema.id.table}:${String((r.event.after ?? r.event.before)?.id)}` : r.type));

describe('watermark window processor', () => {
  it('emits untouched chunk rows at the high watermark, leaves touched keys to the log', async () => {
    const rows = [1, 2, 3, 4].map((id) => ({ id, v: `snap${id}` }));
    const s = store({ w1: { window: 'w1', schema: items, rows, extraKeys: [{ id: 9 }, { id: 5 }] } });
    const p = new WindowProcessor({ sourceName: 'pg', signal: { schema: 'public', table: 'cdc_signal' }, store: s.store });
    const { batch, closed } = await p.process({
      records: [
        ev(items, 'u', { id: 1, v: 'before-window' }),
        sig(SIGNAL.open, 'w1'),
        ev(items, 'u', { id: 2, v: 'in-window' }),
        ev(items, 'd', { id: 3 }),
        ev(other, 'u', { id: 4, v: 'other table, same key' }),
        ev(items, 'c', { id: 5, v: 'inserted in window' }),
        sig(SIGNAL.close, 'w1'),
        ev(items, 'u', { id: 4, v: 'after-window' }),
      ],
      checkpoint: { kind: 'pg', lsn: '0/200' },
    });
    expect(summary(batch.records)).toEqual(['u:items:1', 'u:items:2', 'd:items:3', 'u:other:4', 'c:items:5', 'r:items:1', 'r:items:4', 'd:items:9', 'u:items:4']);
    const r1 = batch.records[5]!;
    expect(r1.type === 'change' && r1.event.source.snapshot).toBe('incremental');
    // positioned at the high watermark
    expect(r1.type === 'change' && r1.event.position.kind === 'pg' && r1.event.position.lsn).toBe('0/' + String(lsn - 1));
    // ...and carries the HIGH watermark's commit time, so LWW sinks order it there.
    const high = r1.type === 'change' ? r1.event.source : null;
    expect(high?.ts_us).toBe(123_456_789);
    expect(high?.origin).toBe('pg');
    expect(batch.checkpoint).toEqual({ kind: 'pg', lsn: '0/200' });
    expect(closed).toEqual([{ window: 'w1', rows: 2, deletes: 1 }]);
    expect(p.openWindows).toEqual([]);
  });

  it('spans batches and abandons a window whose low watermark it never saw', async () => {
    const s = store({ w2: { window: 'w2', schema: items, rows: [{ id: 7, v: 'x' }], extraKeys: [] }, w3: { window: 'w3', schema: items, rows: [{ id: 8, v: 'y' }], extraKeys: [] } });
    const p = new WindowProcessor({ sourceName: 'pg', signal: { schema: 'public', table: 'cdc_signal' }, store: s.store });
    await p.process({ records: [sig(SIGNAL.open, 'w2')], checkpoint: null });
    expect(p.openWindows).toEqual(['w2']);
    const second = await p.process({ records: [ev(items, 'u', { id: 7, v: 'changed' }), sig(SIGNAL.close, 'w2'), sig(SIGNAL.close, 'w3')], checkpoint: null });
    expect(summary(second.batch.records)).toEqual(['u:items:7']);
    expect(second.closed).toEqual([{ window: 'w2', rows: 0, deletes: 0 }]);
    expect(s.log).toEqual(['abandoned w3: low watermark not seen']);
  });
});
