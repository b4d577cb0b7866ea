import { describe, expect, it } from 'vitest';
import type { ChangeEvent, Op } from '../schemas/change-event.js';
import { type Row, UNCHANGED } from '../schemas/column-types.js';
import type { TableSchema } from '../schemas/table-schema.js';
import { keyText, planBatch } from './apply.js';
import type { SinkChange } from './sink.js';

const schema: TableSchema = {
  id: { db: 'd', schema: 'public', table: 't' },
  dialect: 'postgres',
  primaryKey: ['id'],
  columns: [
    { name: 'id', type: { kind: 'int', bits: 32 }, nullable: false, sourceType: 'integer' },
    { name: 'v', type: { kind: 'string' }, nullable: true, sourceType: 'text' },
    { name: 'big', type: { kind: 'string' }, nullable: true, sourceType: 'text' },
  ],
};

let n = 0;
function ch(op: Op, before: Row | null, after: Row | null, ts: number, origin = 'o'): SinkChange {
  n++;
  const e: ChangeEvent = {
    op,
    before,
    after,
    source: { version: 't', connector: 'postgresql', name: 's', ts_ms: ts, ts_us: ts * 1000, snapshot: 'false', db: 'd', schema: 'public', table: 't', txId: null, origin },
    ts_ms: 0,
    transaction: null,
    schema,
    position: { kind: 'pg', lsn: `0/${n.toString(16)}`, commitLsn: `0/${n.toString(16)}`, seq: 0 },
  };
  return { event: e, ref: { topic: 't', partition: 0, offset: String(n) } };
}

const ops = (changes: SinkChange[], versioned = true) => {
  const [p] = planBatch(changes, { versioned });
  return Object.fromEntries([...p!.ops.values()].map((o) => [o.keyText, { kind: o.kind, row: o.row, crossKey: o.crossKey, copyFrom: o.copyFrom?.keyText ?? null }]));
};

describe('planBatch', () => {
  it('keeps the latest version per key and merges unchanged placeholders from earlier images', () => {
    const r = ops([ch('c', null, { id: 1, v: 'a', big: 'B' }, 1), ch('u', { id: 1 }, { id: 1, v: 'b', big: UNCHANGED }, 2), ch('c', null, { id: 2, v: 'x', big: null }, 3), ch('d', { id: 2 }, null, 4)]);
    expect(r).toEqual({
      '["1"]': { kind: 'upsert', row: { id: 1, v: 'b', big: 'B' }, crossKey: false, copyFrom: null },
      '["2"]': { kind: 'delete', row: null, crossKey: false, copyFrom: null },
    });
  });

  it('turns a key change into a delete of the old key and an upsert of the new one', () => {
    const r = ops([ch('u', { id: 1 }, { id: 5, v: 'm', big: UNCHANGED }, 1)]);
    expect(r['["1"]']).toEqual({ kind: 'delete', row: null, crossKey: true, copyFrom: null });
    // the unchanged column must come from the replica's old row
    expect(r['["5"]']).toEqual({ kind: 'upsert', row: { id: 5, v: 'm', big: UNCHANGED }, crossKey: false, copyFrom: '["1"]' });
  });

  it('a chain of key changes in one batch takes the missing columns from the first old key', () => {
    const r = ops([ch('u', { id: 1 }, { id: 5, v: 'm', big: UNCHANGED }, 1), ch('u', { id: 5 }, { id: 9, v: 'n', big: UNCHANGED }, 2)]);
    expect(r['["1"]']).toEqual({ kind: 'delete', row: null, crossKey: true, copyFrom: null });
    expect(r['["5"]']).toEqual({ kind: 'delete', row: null, crossKey: true, copyFrom: null });
    expect(r['["9"]']).toEqual({ kind: 'upsert', row: { id: 9, v: 'n', big: UNCHANGED }, crossKey: false, copyFrom: '["1"]' });
  });

  it('fills a key change from the old key image of the same batch', () => {
    const r = ops([ch('c', null, { id: 1, v: 'a', big: 'B' }, 1), ch('u', { id: 1 }, { id: 5, v: 'm', big: UNCHANGED }, 2)]);
    expect(r['["5"]']).toEqual({ kind: 'upsert', row: { id: 5, v: 'm', big: 'B' }, crossKey: false, copyFrom: null });
  });

  it('versioned: an older change arriving later loses and is recorded as an in-batch conflict; a copy is a duplicate', () => {
    const newer = ch('u', { id: 1 }, { id: 1, v: 'new', big: null }, 5);
    const older = ch('u', { id: 1 }, { id: 1, v: 'old', big: null }, 3);
    const [p] = planBatch([newer, older, newer], { versioned: true });
    expect(p!.ops.get('["1"]')!.row).toEqual({ id: 1, v: 'new', big: null });
    expect(p!.conflicts).toHaveLength(1);
    expect(p!.superseded).toBe(2);
  });

  it('unversioned: the last arrival wins', () => {
    const r = ops([ch('u', { id: 1 }, { id: 1, v: 'new', big: null }, 5), ch('u', { id: 1 }, { id: 1, v: 'old', big: null }, 3)], false);
    expect(r['["1"]']!.row).toEqual({ id: 1, v: 'old', big: null });
  });

  it('a truncate drops older operations and marks the plan cross-partition', () => {
    const [p] = planBatch([ch('c', null, { id: 1, v: 'a', big: null }, 1), ch('t', null, null, 2), ch('c', null, { id: 2, v: 'b', big: null }, 3)], { versioned: true });
    expect([...p!.ops.keys()]).toEqual(['["2"]']);
    expect(p!.truncate).not.toBeNull();
    expect(p!.crossPartition).toBe(true);
  });

  it('key text does not depend on a key widening (int4 1 vs int8 "1")', () => {
    expect(keyText({ id: 1 }, ['id'])).toBe(keyText({ id: '1' }, ['id']));
    expect(keyText({ a: 'x', b: 2 }, ['b', 'a'])).toBe('["2","x"]');
  });

  it('single-column key text is the same text as the general form (tombstones are found by its hash)', () => {
    const general = (v: unknown) => JSON.stringify([typeof v === 'number' ? String(v) : v]);
    for (const v of [0, -7, 1.5, 1e21, 2 ** 53 + 2, 'a"b\\c', 'ü\u0000\n', '', '123']) expect(keyText({ id: v as never }, ['id'])).toBe(general(v));
    expect(keyText({ id: null }, ['id'])).toBe('[null]');
    expect(keyText({}, ['id'])).toBe('[null]');
  });

  it('keyless tables keep every operation in order', () => {
    const k: TableSchema = { ...schema, primaryKey: [] };
    const c = ch('c', null, { id: 1, v: 'a', big: null }, 1);
    c.event.schema = k;
    const d = ch('d', { id: 1, v: 'a', big: null }, null, 2);
    d.event.schema = k;
    const [p] = planBatch([c, c, d], { versioned: true });
    expect(p!.keyless.map((o) => o.kind)).toEqual(['insert', 'insert', 'delete']);
  });
});
