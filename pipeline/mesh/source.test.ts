import { describe, expect, it } from 'vitest';
import type { SourceRecord } from '../../connectors/source.js';
import type { ChangeEvent, Op, TransactionEvent } from '../../schemas/change-event.js';
import type { Row } from '../../schemas/column-types.js';
import type { TableSchema } from '../../schemas/table-schema.js';
import { meshTransform } from './source.js';

const items: TableSchema = {
  id: { db: 'app', schema: 'public', table: 'items' },
  columns: [
    { name: 'id', type: { kind: 'int', bits: 32 }, nullable: false, sourceType: 'integer' },
    { name: 'name', type: { kind: 'string' }, nullable: true, sourceType: 'text' },
    { name: '_cdc_ts', type: { kind: 'int', bits: 64 }, nullable: false, sourceType: 'bigint' },
    { name: '_cdc_origin', type: { kind: 'string' }, nullable: false, sourceType: 'text' },
    { name: '_cdc_order', type: { kind: 'string' }, nullable: false, sourceType: 'text' },
  ],
  primaryKey: ['id'],
  dialect: 'postgres',
};
const outbox: TableSchema = {
  id: { db: 'app', schema: 'cdc_meta', table: 'mesh_outbox' },
  columns: ['id', 'tbl', 'key_text', 'ts', 'origin', 'vv'].map((name) => ({ name, type: { kind: 'string' }, nullable: true, sourceType: 'text' })),
  primaryKey: ['id'],
  dialect: 'postgres',
};

let seq = 0;
function ev(schema: TableSchema, op: Op, before: Row | null, after: Row | null, tx = '7'): SourceRecord {
  const e: ChangeEvent = {
    op,
    before,
    after,
    source: { version: 't', connector: 'postgresql', name: 'pg-eu', ts_ms: 1000, ts_us: 1_000_000, snapshot: 'false', db: 'app', schema: schema.id.schema, table: schema.id.table, txId: tx },
    ts_ms: 0,
    transaction: { id: tx, total_order: ++seq, data_collection_order: seq },
    schema,
    position: { kind: 'pg', lsn: `0/${seq}`, commitLsn: '0/99', seq },
  };
  return { type: 'change', event: e };
}
const end = (counts: [string, number][]): SourceRecord => {
  const t: TransactionEvent = {
    status: 'END',
    id: '7',
    event_count: counts.reduce((s, [, n]) => s + n, 0),
    data_collections: counts.map(([data_collection, event_count]) => ({ data_collection, event_count })),
    ts_ms: 1000,
    source: 'pg-eu',
    position: { kind: 'pg', lsn: '0/100' },
  };
  return { type: 'transaction', event: t };
};

describe('mesh source transform', () => {
  it('versions upserts from the row, deletes from their outbox record, and hides both', () => {
    const t = meshTransform({ node: 'pg-eu', metaSchema: 'cdc_meta' });
    const out = t({
      records: [
        ev(items, 'u', null, { id: 1, name: 'x', _cdc_ts: '5000000', _cdc_origin: 'pg-eu', _cdc_order: '' }),
        ev(outbox, 'c', null, { id: '1', tbl: 'items', key_text: '["2"]', ts: '6000000', origin: 'pg-eu', vv: null }),
        ev(outbox, 'd', { id: '1' }, null),
        ev(items, 'd', { id: 2 }, null),
        end([
          ['app.public.items', 2],
          ['app.cdc_meta.mesh_outbox', 2],
        ]),
      ],
      checkpoint: null,
    });
    const changes = out.records.filter((r) => r.type === 'change').map((r) => (r as { event: ChangeEvent }).event);
    expect(changes.map((e) => [e.op, e.source.ts_us, e.source.origin])).toEqual([
      ['u', 5_000_000, 'pg-eu'],
      ['d', 6_000_000, 'pg-eu'],
    ]);
    expect(changes[0]!.after).toEqual({ id: 1, name: 'x' });
    expect(changes[0]!.schema.columns.map((c) => c.name)).toEqual(['id', 'name']);
    const e = (out.records.at(-1) as { event: TransactionEvent }).event;
    expect(e.event_count).toBe(2);
    expect(e.data_collections).toEqual([{ data_collection: 'app.public.items', event_count: 2 }]);
  });

  it('falls back to the commit time for rows the triggers never versioned', () => {
    const t = meshTransform({ node: 'pg-eu', metaSchema: 'cdc_meta' });
    const out = t({ records: [ev(items, 'c', null, { id: 3, name: 'old', _cdc_ts: '0', _cdc_origin: '', _cdc_order: '' })], checkpoint: null });
    expect((out.records[0] as { event: ChangeEvent }).event.source.ts_us).toBe(1_000_000);
  });
});
